"""Contract folders on a shared directory: made complete once, read without following what a job left."""

from __future__ import annotations

import io
import os
import tarfile
import time
from pathlib import Path
from unittest import mock

from longshore.engine.contract import refuse_result
from longshore.engine.contract_folders import PROVEN_MARK, SharedContracts, go_stat, read_file

USER = "65534:65534"


def _code_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        folder = tarfile.TarInfo("code")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o555
        archive.addfile(folder)
        data = b"print('hi')\n"
        entry = tarfile.TarInfo("code/hello.py")
        entry.size, entry.mode = len(data), 0o444
        archive.addfile(entry, io.BytesIO(data))
        sub = tarfile.TarInfo("code/lib")
        sub.type, sub.mode = tarfile.DIRTYPE, 0o777
        archive.addfile(sub)
        module = tarfile.TarInfo("code/lib/mod.py")
        module.size, module.mode = len(data), 0o666
        archive.addfile(module, io.BytesIO(data))
    return buffer.getvalue()


def test_a_folder_holds_the_contract_with_its_owners_and_modes(tmp_path):
    contracts = SharedContracts(tmp_path, "engine1")
    contracts.base.mkdir(parents=True)
    umask = os.umask(0)  # whatever the worker's umask, the code's folders and files are read-only
    try:
        folder = contracts.write("longshore-j-1", payload='{"a": 1}', user=USER, config='{"c": 2}',
                                 code_files=_code_tar())
    finally:
        os.umask(umask)
    assert folder == tmp_path / "engine1" / "longshore-j-1"
    assert (folder / "payload.json").read_text() == '{"a": 1}' and (folder / "config.json").read_text() == '{"c": 2}'
    assert os.stat(folder / "payload.json").st_mode & 0o777 == 0o444
    assert (os.stat(folder / "result.json").st_uid, os.stat(folder / "progress").st_gid) == (65534, 65534)
    assert os.stat(folder / "task").st_mode & 0o7777 == 0o1777
    assert os.stat(folder).st_mode & 0o777 == 0o755
    assert (folder / "code" / "hello.py").read_text() == "print('hi')\n"
    assert os.stat(folder / "code").st_mode & 0o777 == 0o555 and os.stat(folder / "code").st_uid == 0
    assert os.stat(folder / "code" / "lib").st_mode & 0o777 == 0o555
    assert os.stat(folder / "code" / "lib" / "mod.py").st_mode & 0o777 == 0o444


def test_a_folder_that_exists_is_never_rewritten(tmp_path):
    # A repeated create (a redelivery) must not empty a result the running job is writing
    contracts = SharedContracts(tmp_path, "engine1")
    contracts.base.mkdir(parents=True)
    folder = contracts.write("longshore-j-1", payload="{}", user=USER, config=None, code_files=None)
    (folder / "result.json").write_text("written by the job")
    assert contracts.write("longshore-j-1", payload="{}", user=USER, config=None, code_files=None) == folder
    assert (folder / "result.json").read_text() == "written by the job"
    assert not (folder / "config.json").exists()


def test_reading_a_file_never_follows_a_link_nor_blocks_on_a_pipe_and_stops_at_the_limit(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("host file")
    (tmp_path / "link").symlink_to(secret)
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "big").write_bytes(b"x" * 2000)
    (tmp_path / "small").write_bytes(b"ok")
    assert read_file(tmp_path / "missing", 100) is None
    for name, refusal in (("link", "a symbolic link"), ("pipe", "a named pipe"), ("big", "over the limit of 100")):
        found, data = read_file(tmp_path / name, 100)
        assert data is None and refusal in refuse_result(go_stat(found), 100)
    found, data = read_file(tmp_path / "small", 100)
    assert data == b"ok" and refuse_result(go_stat(found), 100) is None
    assert refuse_result(go_stat(os.stat(tmp_path)), 100).endswith("is a directory, not a regular file")


def test_a_probe_is_remembered_only_when_the_engine_saw_the_token(tmp_path):
    contracts = SharedContracts(tmp_path, "engine1")
    seen = []

    def engine_elsewhere(folder, token):
        seen.append((folder, (folder / token).read_text()))
        return False

    assert "does not see" in contracts.probe(engine_elsewhere, USER)
    assert not contracts.proven() and not any(contracts.base.iterdir())  # the probe's folder is gone too
    folder, token = seen[0]
    assert folder.parent == contracts.base and len(token) == 16
    assert contracts.probe(lambda folder, token: (folder / token).read_text() == token, USER) is None
    assert contracts.proven() and [p.name for p in contracts.base.iterdir()] == [PROVEN_MARK]


def test_old_folders_are_listed_by_their_containers_name_and_removed_with_their_partials(tmp_path):
    contracts = SharedContracts(tmp_path, "engine1")
    contracts.base.mkdir(parents=True)
    old = time.time() - 60
    # A writer's partial is `.partial-NAME.MARK`; a probe's `.partial-probe-TOKEN.probe`; `.partial-NAME` is
    # the last release's.
    for name in ("longshore-old-1", ".partial-longshore-crashed-1.a1b2", ".partial-longshore-crashed-1.c3d4",
                 ".partial-probe-abc.probe", ".partial-longshore-last-release-1", "longshore-new-1"):
        (contracts.base / name).mkdir()
        if "new" not in name:
            os.utime(contracts.base / name, (old, old))
    (contracts.base / PROVEN_MARK).write_text("")
    # and a create of the crashed attempt making its folder again right now
    (contracts.base / ".partial-longshore-crashed-1.e5f6").mkdir()
    older_than = time.time() - 10
    listed = contracts.names(older_than=older_than)
    assert listed == [".partial-longshore-last-release-1", "longshore-crashed-1", "longshore-old-1", "probe-abc"]
    for name in listed:
        contracts.remove(name, older_than=older_than)  # as the sweep does: the fresh one is left to its writer
    assert sorted(p.name for p in contracts.base.iterdir()) == [
        ".partial-longshore-crashed-1.e5f6", PROVEN_MARK, "longshore-new-1"]
    contracts.remove("longshore-crashed-1")  # as a reap does: everything of its name
    assert sorted(p.name for p in contracts.base.iterdir()) == [PROVEN_MARK, "longshore-new-1"]


def test_two_writers_of_one_folder_never_share_a_partial_and_a_reused_folder_is_fresh_again(tmp_path):
    # Two create steps of one attempt at once (a redelivery racing its first delivery): each writes a partial
    # of its own, the first rename wins, and the other's partial goes.
    contracts = SharedContracts(tmp_path, "engine1")
    contracts.base.mkdir(parents=True)
    partials = []
    real_rename = Path.rename

    def rename_after_a_second_writer(self, target):
        partials.append(self.name)
        if len(partials) == 1:  # the second writer makes and renames its folder while the first is about to
            contracts.write("longshore-j-1", payload='{"second": 1}', user=USER, config=None, code_files=None)
        return real_rename(self, target)

    with mock.patch.object(Path, "rename", rename_after_a_second_writer):
        folder = contracts.write("longshore-j-1", payload='{"first": 1}', user=USER, config=None, code_files=None)
    assert len(set(partials)) == 2 and all(name.startswith(".partial-longshore-j-1.") for name in partials)
    assert (folder / "payload.json").read_text() == '{"second": 1}'  # complete, from the one that won
    assert [p.name for p in contracts.base.iterdir()] == ["longshore-j-1"]
    old = time.time() - 600
    os.utime(folder, (old, old))
    contracts.write("longshore-j-1", payload="{}", user=USER, config=None, code_files=None)
    assert contracts.names(older_than=time.time() - 120) == []  # a late retry's folder is not swept under it
