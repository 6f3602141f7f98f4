"""Contract folders on a directory the worker and its engine share: the contract without an archive call.

Copying the contract into each container (`put_archive`) makes the engine extract a tar in a helper
process of its own: that was a third of the engine's CPU per job and about 40 ms of each job's latency.
When the worker and its engine see one directory at the same path (a worker on the engine's host, or both
mounting it), the worker writes each attempt's contract folder there itself and the container gets it
as a bind mount at /longshore; the result and progress files are read straight from it.

Whether they do is proved once per engine (`SharedContracts.probe`): a container made with the folder
mounted must see a token the worker wrote. Anything else (no such directory on the engine's host, a
user-namespaced or rootless engine, a worker that cannot give files to the job's user) means the contract
is copied into each container as before. A folder is as the copied contract was: owned by root and
read-only to the job, but for the result and progress files made for the job's user.
"""

from __future__ import annotations

import errno
import glob
import io
import os
import secrets
import shutil
import stat
import tarfile
import time
from pathlib import Path
from typing import Callable

from longshore.engine.contract import CODE_FOLDER, CONFIG_PATH, PAYLOAD_PATH, PROGRESS_PATH, RESULT_PATH, TASK_DIR, \
    inside

#: Written in an engine's folder once a probe proved the engine sees it: later processes need no probe.
PROVEN_MARK = ".shared-with-engine"
#: A folder is made under this name, then renamed: a folder under its own name is always complete.
PARTIAL = ".partial-"


class SharedContracts:
    """The contract folders of one engine's containers, under `root/ENGINE_ID/CONTAINER_NAME`."""

    def __init__(self, root: Path, engine_id: str):
        self.base = root / engine_id

    def folder(self, name: str) -> Path:
        """Where the container `name`'s contract folder is (whether or not it exists)."""
        return self.base / name

    def proven(self) -> bool:
        """True when a probe has shown the engine sees this directory."""
        return (self.base / PROVEN_MARK).is_file()

    def probe(self, sees: Callable[[Path, str], bool], user: str) -> str | None:
        """Prove the engine shares the directory: `sees(folder, token_name)` must find, in a container with
        `folder` mounted, the token written here. None when it does (and remembered); else why not."""
        name = f"{PARTIAL}probe-{secrets.token_hex(8)}.probe"  # named as a writer's partial: swept as one
        folder = self.base / name
        try:
            self.base.mkdir(parents=True, exist_ok=True, mode=0o700)
            folder.mkdir(mode=0o755)
            token = secrets.token_hex(8)
            (folder / token).write_text(token)
            uid, gid = _ids(user)
            os.chown(folder / token, uid, gid)  # a worker that cannot give files to the job's user cannot share
        except OSError as exc:
            shutil.rmtree(folder, ignore_errors=True)
            return f"the worker cannot prepare folders in {self.base.parent}: {exc.strerror or exc}"
        try:
            if not sees(folder, token):
                return f"the Docker engine does not see {self.base.parent} (a container there lacks the worker's file)"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        (self.base / PROVEN_MARK).write_text(f"{time.time()}\n")
        return None

    def write(self, name: str, *, payload: str, user: str, config: str | None, code_files: bytes | None) -> Path:
        """The container's contract folder, made complete (or found complete: never rewritten, a job may
        be writing its result there)."""
        folder = self.folder(name)
        if folder.is_dir():
            os.utime(folder)  # a create retried late: the sweep's grace counts from now, not from the make
            return folder
        # One partial folder per writer: two create steps of one attempt never write into each other's.
        # One a crash left is swept with the attempt's folder.
        partial = self.base / f"{PARTIAL}{name}.{secrets.token_hex(4)}"
        partial.mkdir(mode=0o755)
        os.chmod(partial, 0o755)  # whatever the umask
        task = partial / inside(TASK_DIR)
        task.mkdir()
        os.chmod(task, 0o1777)  # TASK_DIR's tmpfs takes its mount point's mode
        for path, text in ((PAYLOAD_PATH, payload), (CONFIG_PATH, config)):
            if text is not None:
                _make(partial / inside(path), text.encode(), 0o444)
        uid, gid = _ids(user)
        for path in (RESULT_PATH, PROGRESS_PATH):
            _make(partial / inside(path), b"", 0o644)
            os.chown(partial / inside(path), uid, gid)
        if code_files is not None:
            with tarfile.open(fileobj=io.BytesIO(code_files)) as archive:
                # Checked when it was made (`domain.archives`); "data" refuses anything that escapes anyway.
                archive.extractall(partial, filter="data")
            _read_only(partial / CODE_FOLDER)
        try:
            partial.rename(folder)
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            shutil.rmtree(partial, ignore_errors=True)  # another step of the same attempt made it first
        return folder

    def remove(self, name: str, *, older_than: float | None = None) -> None:
        """Remove a container's folder once the container is gone (already gone is fine), with any partial one
        a crash left; with `older_than` (epoch seconds), only those last changed before it: a create of the
        same attempt may be writing a fresh one meanwhile."""
        for entry in [self.folder(name), *self.base.glob(f"{glob.escape(PARTIAL + name)}.*")]:
            try:
                if older_than is not None and entry.lstat().st_mtime >= older_than:
                    continue
            except FileNotFoundError:
                continue
            shutil.rmtree(entry, ignore_errors=True)  # never follows a link the job left

    def names(self, *, older_than: float) -> list[str]:
        """Container names of the folders (complete or not) last changed before `older_than` (epoch seconds)."""
        try:
            entries = list(os.scandir(self.base))
        except FileNotFoundError:
            return []
        # A probe's folder (`probe-…`) names no container: one a crash left goes too.
        return sorted({_container_of(entry.name) for entry in entries if entry.is_dir(follow_symlinks=False)
                       and entry.stat(follow_symlinks=False).st_mtime < older_than})


def _container_of(entry: str) -> str:
    """The container name a folder's entry is for: its own name, or a partial one's without the writer's mark."""
    return entry.removeprefix(PARTIAL).rpartition(".")[0] or entry if entry.startswith(PARTIAL) else entry


def read_file(path: Path, limit_bytes: int) -> tuple[os.stat_result, bytes | None] | None:
    """A file a job could write: its stat, and its bytes when it is a regular file within the limit (else
    None); None when it does not exist. Never follows a link and never blocks on a pipe the job made."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EAGAIN, errno.EWOULDBLOCK):  # a link, or a lease the job holds
            return os.lstat(path), None
        raise
    with os.fdopen(fd, "rb") as opened:
        found = os.fstat(fd)
        if not stat.S_ISREG(found.st_mode) or found.st_size > limit_bytes:
            return found, None
        return found, opened.read(limit_bytes + 1)[:limit_bytes]


def go_stat(found: os.stat_result) -> dict:
    """A stat as the engine's archive API answers it (Go's FileMode bits), for one refusal rule on both paths."""
    kinds = ((stat.S_ISDIR, 1 << 31), (stat.S_ISLNK, 1 << 27), (stat.S_ISFIFO, 1 << 25), (stat.S_ISSOCK, 1 << 24),
             (stat.S_ISCHR, (1 << 26) | (1 << 21)), (stat.S_ISBLK, 1 << 26))
    mode = stat.S_IMODE(found.st_mode) | sum(bit for test, bit in kinds if test(found.st_mode))
    return {"mode": mode, "size": found.st_size, "mtime": f"{found.st_mtime_ns}"}


def _read_only(top: Path) -> None:
    """An archive code's files, whatever the worker's umask: folders 0555, files 0444 (0555 if executable)."""
    for folder, _folders, files in os.walk(top):
        os.chmod(folder, 0o555)
        for name in files:
            path = os.path.join(folder, name)
            os.chmod(path, 0o555 if os.lstat(path).st_mode & 0o100 else 0o444)


def _make(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as made:
        made.write(data)
    os.chmod(path, mode)


def _ids(user: str) -> tuple[int, int]:
    uid, gid = (int(part) for part in user.split(":"))
    return uid, gid
