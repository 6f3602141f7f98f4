"""Code archives: the zip an archive code is uploaded as, checked once at upload and turned into the tar a
worker puts into the job's container.

What a zip may not do, each refused naming the member: climb out of its folder (`..`, an absolute path, a
drive, a backslash), carry a link or a device, name a member twice, hold more files or unpack to more bytes
than the limits (counted while inflating, so a zip whose headers lie is caught too), or lack its entry file.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from longshore.errors import InvalidJob

#: The most members an archive may hold.
MAX_FILES = 10_000
#: A member's name, at most, and its folders' depth.
MAX_NAME_BYTES = 255
MAX_DEPTH = 32
#: What each file or folder costs in the tar (its header), counted toward the unpacked limit.
TAR_HEADER_BYTES = 512
#: Only these are inflated: zipfile inflates bzip2 and LZMA members without bounding their output.
COMPRESSIONS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflated"}
_END_OF_DIRECTORY = b"PK\x05\x06"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ArchiveLimits:
    """How big an archive may be, zipped and unpacked."""

    zip_bytes: int
    unpacked_bytes: int
    files: int = MAX_FILES


@dataclass(frozen=True)
class ArchiveInfo:
    """A checked archive: its digest (its id in the store) and what it unpacks to."""

    sha256: str
    entry: str  #: the entry file's path in it, normalised
    size_bytes: int
    unpacked_bytes: int
    files: int


def check_archive(data: bytes, entry: str, limits: ArchiveLimits) -> ArchiveInfo:
    """Check an upload: a zip within the limits, every member safe, `entry` a file in it. Raises InvalidJob
    naming the problem; inflates every member once (nothing is written anywhere)."""
    if not isinstance(data, (bytes, bytearray)):
        raise InvalidJob("archive: must be the bytes of a zip file")
    if len(data) > limits.zip_bytes:
        raise InvalidJob(f"archive: {len(data)} bytes, over the limit of {limits.zip_bytes} "
                         "(LONGSHORE_CODE_ARCHIVE_LIMIT)")
    entry_path = _check_entry(entry)
    unpacked, names = 0, set()
    for member, content in _members(bytes(data), limits):
        names.add(member)
        unpacked += len(content)
    if entry_path not in names:
        raise InvalidJob(f"entry: {entry!r} is not a file of the archive")
    return ArchiveInfo(sha256=hashlib.sha256(data).hexdigest(), entry=entry_path, size_bytes=len(data),
                       unpacked_bytes=unpacked,
                       files=len(names))


def archive_as_tar(data: bytes, folder: str, limits: ArchiveLimits) -> bytes:
    """The archive's files as a tar to extract at the contract folder's root, under `folder`: owned by root,
    readable by all, writable by none (executable where the zip said so). Checks the zip again as it goes."""
    buffer = io.BytesIO()
    made: set[str] = set()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        top = tarfile.TarInfo(folder)
        top.type, top.mode = tarfile.DIRTYPE, 0o555
        tar.addfile(top)
        for name, content, executable in _members_with_modes(data, limits):
            parts = PurePosixPath(name).parts
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent not in made:
                    made.add(parent)
                    directory = tarfile.TarInfo(f"{folder}/{parent}")
                    directory.type, directory.mode = tarfile.DIRTYPE, 0o555
                    tar.addfile(directory)
            member = tarfile.TarInfo(f"{folder}/{name}")
            member.size, member.mode = len(content), 0o555 if executable else 0o444
            tar.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


def _check_entry(entry: object) -> str:
    if not isinstance(entry, str) or not entry:
        raise InvalidJob("entry: an archive code names its entry file, the file its stack runs")
    return _safe_name(entry, "entry")


def _members(data: bytes, limits: ArchiveLimits):
    for name, content, _executable in _members_with_modes(data, limits):
        yield name, content


def _declared_members(data: bytes) -> int | None:
    """The member count the zip's end record declares (read before zipfile parses every entry)."""
    at = data.rfind(_END_OF_DIRECTORY, max(0, len(data) - (1 << 16) - 22))
    return int.from_bytes(data[at + 10:at + 12], "little") if at >= 0 and len(data) >= at + 22 else None


def _members_with_modes(data: bytes, limits: ArchiveLimits):
    """(name, bytes, executable) of each file member, every rule checked; folders are implied, and count
    as members (and as a tar header's bytes each) like files."""
    if len(data) > limits.zip_bytes:
        raise InvalidJob(f"archive: {len(data)} bytes, over the limit of {limits.zip_bytes}")
    declared = _declared_members(data)
    if declared is not None and declared > limits.files:  # 0xFFFF (zip64) is over any limit we allow
        raise InvalidJob(f"archive: {declared} members, over the limit of {limits.files}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as exc:
        raise InvalidJob(f"archive: is not a zip file ({str(exc)[:100]})") from None
    if len(infos) > limits.files:
        raise InvalidJob(f"archive: {len(infos)} members, over the limit of {limits.files}")
    seen: set[str] = set()
    folders: set[str] = set()
    unpacked = 0
    for info in infos:
        name = _safe_name(info.filename, "archive")
        kind = stat.S_IFMT(info.external_attr >> 16)
        if len(PurePosixPath(name).parts) > MAX_DEPTH:
            raise InvalidJob(f"archive: member {name[:80]!r} is more than {MAX_DEPTH} folders deep")
        if info.is_dir():
            continue
        if info.compress_type not in COMPRESSIONS:
            raise InvalidJob(f"archive: member {name!r} is compressed with method {info.compress_type}; only "
                             "stored and deflated members are taken")
        if kind not in (0, stat.S_IFREG):
            raise InvalidJob(f"archive: member {name!r} is a link or a special file; only files and folders "
                             "may be in a code archive")
        if name in seen:
            raise InvalidJob(f"archive: member {name!r} is in it twice")
        parents = {str(parent) for parent in PurePosixPath(name).parents if str(parent) != "."}
        if name in folders or parents & seen:
            raise InvalidJob(f"archive: member {name!r} is both a file and a folder")
        seen.add(name)
        unpacked += TAR_HEADER_BYTES * (1 + len(parents - folders))
        folders |= parents
        if len(seen) + len(folders) > limits.files:
            raise InvalidJob(f"archive: more than {limits.files} files and folders")
        room = limits.unpacked_bytes - unpacked
        if info.file_size > room:
            raise InvalidJob(f"archive: unpacks to more than {limits.unpacked_bytes} bytes "
                             f"(LONGSHORE_CODE_UNPACKED_LIMIT), passed at member {name!r}")
        content = _inflate(archive, info, name, room, limits)
        unpacked += len(content)
        yield name, content, bool((info.external_attr >> 16) & 0o111)


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, room: int,
             limits: ArchiveLimits) -> bytes:
    """A member's bytes, read in chunks and stopped as soon as they pass what is left of the limit."""
    if info.flag_bits & 0x1:
        raise InvalidJob(f"archive: member {name!r} is encrypted")
    out = bytearray()
    try:
        with archive.open(info) as stream:
            while (chunk := stream.read(_CHUNK)) and len(out) <= room:
                out += chunk
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, EOFError, RuntimeError, ValueError,
            MemoryError) as exc:
        raise InvalidJob(f"archive: member {name!r} cannot be read ({str(exc)[:100]})") from None
    if len(out) > room:
        raise InvalidJob(f"archive: unpacks to more than {limits.unpacked_bytes} bytes "
                         f"(LONGSHORE_CODE_UNPACKED_LIMIT), passed at member {name!r}")
    return bytes(out)


def _safe_name(name: str, what: str) -> str:
    """A member's path, normalised (`a/./b` is `a/b`, a folder's trailing `/` dropped); refused if it could
    land outside the folder it is unpacked into."""
    if "\x00" in name or "\\" in name or len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidJob(f"{what}: {name[:80]!r} is not a usable file name (a NUL, a backslash, or over "
                         f"{MAX_NAME_BYTES} bytes)")
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]) or not path.parts:
        raise InvalidJob(f"{what}: {name[:80]!r} would land outside the code's folder (absolute, a drive, "
                         "or '..')")
    return str(path)
