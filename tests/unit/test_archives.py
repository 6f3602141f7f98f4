"""Code archives: what an uploaded zip may not do, and the tar a worker makes of one."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from longshore.domain.archives import ArchiveLimits, archive_as_tar, check_archive
from longshore.errors import InvalidJob

LIMITS = ArchiveLimits(zip_bytes=1 << 20, unpacked_bytes=1 << 20, files=50)


def zipped(*members: tuple[str, bytes] | zipfile.ZipInfo, contents: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            if isinstance(member, zipfile.ZipInfo):
                archive.writestr(member, (contents or {}).get(member.filename, b""))
            else:
                archive.writestr(*member)
    return buffer.getvalue()


def test_a_good_archive_is_described_by_its_digest_and_size():
    data = zipped(("hello.py", b"print('hi')\n"), ("lib/util.py", b"X = 1\n"))
    info = check_archive(data, "./hello.py", LIMITS)
    assert (info.entry, info.files, info.unpacked_bytes, len(info.sha256)) == ("hello.py", 2, 18, 64)


@pytest.mark.parametrize("name", ["../evil.py", "/etc/passwd", "a/../../evil", "C:/evil", "a\\..\\evil"])
def test_a_member_that_would_land_outside_its_folder_is_refused(name):
    with pytest.raises(InvalidJob, match="would land outside|not a usable file name"):
        check_archive(zipped(("hello.py", b""), (name, b"x")), "hello.py", LIMITS)


def test_a_link_in_the_archive_is_refused():
    link = zipfile.ZipInfo("passwd")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(InvalidJob, match="'passwd' is a link"):
        check_archive(zipped(("hello.py", b""), link, contents={"passwd": b"/etc/passwd"}), "hello.py", LIMITS)


def test_a_zip_bomb_stops_at_the_unpacked_limit_while_inflating():
    bomb = zipped(("hello.py", b""), ("zeros", b"\0" * (8 << 20)))  # 8 MiB of zeros: ~8 KiB zipped
    assert len(bomb) < 64 << 10
    with pytest.raises(InvalidJob, match=r"unpacks to more than 1048576 bytes .* at member 'zeros'"):
        check_archive(bomb, "hello.py", LIMITS)


def test_a_zip_whose_header_lies_about_its_size_is_still_stopped():
    # The central directory says 10 bytes; the data inflates to 8 MiB.
    data = bytearray(zipped(("hello.py", b""), ("zeros", b"\0" * (8 << 20))))
    directory = data.rindex(b"PK\x01\x02")
    data[directory + 24:directory + 28] = (10).to_bytes(4, "little")  # uncompressed size in the central record
    with pytest.raises(InvalidJob, match="unpacks to more than|cannot be read"):
        check_archive(bytes(data), "hello.py", LIMITS)


@pytest.mark.parametrize("data, entry, words", [
    (b"not a zip", "hello.py", "is not a zip file"),
    (zipped(("other.py", b"")), "hello.py", "entry: 'hello.py' is not a file of the archive"),
    (zipped(("hello.py", b"")), "", "entry: an archive code names its entry file"),
    (zipped(("a", b""), ("a/b", b"")), "a/b", "both a file and a folder"),
    (zipped(("hello.py", b"1"), ("./hello.py", b"2")), "hello.py", "'hello.py' is in it twice"),
    (zipped(*[(f"f{i}", b"") for i in range(51)]), "f1", "51 members, over the limit of 50"),
    (b"PK" + b"\0" * (2 << 20), "hello.py", "over the limit of 1048576"),
])
def test_bad_archives_are_refused_naming_the_problem(data, entry, words):
    with pytest.raises(InvalidJob, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_archive(data, entry, LIMITS)


def test_the_tar_holds_the_files_read_only_and_owned_by_root_under_its_folder():
    script = zipfile.ZipInfo("bin/run.sh")
    script.external_attr = (stat.S_IFREG | 0o755) << 16
    data = zipped(("hello.py", b"print('hi')\n"), script, contents={"bin/run.sh": b"#!/bin/sh\n"})
    with tarfile.open(fileobj=io.BytesIO(archive_as_tar(data, "code", LIMITS))) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert sorted(members) == ["code", "code/bin", "code/bin/run.sh", "code/hello.py"]
        assert tar.extractfile("code/hello.py").read() == b"print('hi')\n"
    assert {m.uid for m in members.values()} == {0}
    assert (members["code/hello.py"].mode, members["code/bin/run.sh"].mode, members["code/bin"].mode) == (
        0o444, 0o555, 0o555)



def test_bzip2_and_lzma_members_are_refused_before_inflating():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("hello.py", b"\0" * (4 << 20))  # a few hundred bytes that inflate to 4 MiB
    with pytest.raises(InvalidJob, match="compressed with method 12; only stored and deflated"):
        check_archive(buffer.getvalue(), "hello.py", LIMITS)


def test_folders_count_as_members_and_their_depth_is_bounded():
    deep = "/".join(f"d{i}" for i in range(40)) + "/f"
    with pytest.raises(InvalidJob, match="more than 32 folders deep"):
        check_archive(zipped(("hello.py", b""), (deep, b"")), "hello.py", LIMITS)
    # 10 files, each 5 folders deep in folders of its own: 60 files and folders, over a limit of 50
    many = [(f"a{i}/b/c/d/e/f", b"") for i in range(10)]
    with pytest.raises(InvalidJob, match="more than 50 files and folders"):
        check_archive(zipped(("hello.py", b""), *many), "hello.py", LIMITS)
