"""The job's contract inside its container (IronWorker's names): the payload going in, the result coming out.

/longshore is the contract folder, a volume owned by root: the job reads `payload.json` there and
may write only `result.json` and `progress`, files made for its user before it starts (they cannot be
swapped for a directory or a link). TASK_DIR, its working directory, and /tmp are its scratch space (tmpfs).
"""

from __future__ import annotations

import io
import tarfile
import time
from typing import Iterable

CONTRACT_DIR = "/longshore"
PAYLOAD_PATH = f"{CONTRACT_DIR}/payload.json"
TASK_DIR = f"{CONTRACT_DIR}/task"
RESULT_PATH = f"{CONTRACT_DIR}/result.json"
CONFIG_PATH = f"{CONTRACT_DIR}/config.json"
#: The job's progress, as it last wrote it: "PERCENT MESSAGE" (read while it runs).
PROGRESS_PATH = f"{CONTRACT_DIR}/progress"
#: The most of the progress file read; a larger one is ignored until it shrinks.
PROGRESS_LIMIT_BYTES = 4096
#: An archive code's files (root's, read-only): its jobs' working directory.
CODE_DIR = f"{CONTRACT_DIR}/code"
CODE_FOLDER = "code"  #: the same, as a member of a tar extracted at CONTRACT_DIR


def ironworker_arguments(job_id: str, *, with_config: bool) -> list[str]:
    """The arguments IronWorker gives an archive code's entry file after its name."""
    config = ["-config", CONFIG_PATH] if with_config else []
    return ["-payload", PAYLOAD_PATH, *config, "-id", job_id, "-d", TASK_DIR]


def contract_env(job_id: str, *, with_config: bool = False) -> dict[str, str]:
    """The variables the platform sets in every job's container (HOME too: the root is read-only), and
    CONFIG_FILE for a job of a code with a config."""
    env = {"TASK_ID": job_id, "PAYLOAD_FILE": PAYLOAD_PATH, "TASK_DIR": TASK_DIR, "RESULT_FILE": RESULT_PATH,
           "PROGRESS_FILE": PROGRESS_PATH, "HOME": TASK_DIR}
    return {**env, "CONFIG_FILE": CONFIG_PATH} if with_config else env


def contract_archive(payload: str, user: str, *, config: str | None = None) -> bytes:
    """A tar of the contract folder's contents, to extract into it: the payload and the config (root's,
    read-only), the empty result and progress files (the job's `user`, "uid:gid"), and TASK_DIR's mount point (sticky,
    like /tmp: a tmpfs mounted there takes its mode)."""
    uid, gid = (int(part) for part in user.split(":"))
    now = time.time()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        task = tarfile.TarInfo(inside(TASK_DIR))
        task.type, task.mode, task.mtime = tarfile.DIRTYPE, 0o1777, now
        archive.addfile(task)
        for path, text in ((PAYLOAD_PATH, payload), (CONFIG_PATH, config)):
            if text is None:
                continue
            data = text.encode()
            read_only = tarfile.TarInfo(inside(path))
            read_only.size, read_only.mode, read_only.mtime = len(data), 0o444, now
            archive.addfile(read_only, io.BytesIO(data))
        for path in (RESULT_PATH, PROGRESS_PATH):
            writable = tarfile.TarInfo(inside(path))
            writable.mode, writable.uid, writable.gid, writable.mtime = 0o644, uid, gid, now
            archive.addfile(writable, io.BytesIO(b""))
    return buffer.getvalue()


def inside(path: str) -> str:
    """A path under CONTRACT_DIR, relative to it (as a member of a tar extracted there)."""
    return path.removeprefix(CONTRACT_DIR + "/")


#: Go's os.FileMode type bits (the engine's stat "mode"): any of them set means not a regular file.
_NOT_REGULAR = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
_KINDS = ((1 << 31, "a directory"), (1 << 27, "a symbolic link"), (1 << 25, "a named pipe"),
          (1 << 24, "a socket"), (1 << 26, "a device"))
#: What a tar adds around one file: a header block and the padding of the last block.
TAR_OVERHEAD_BYTES = 3 * 512


def refuse_result(stat: dict, limit_bytes: int) -> str | None:
    """Why the result file must not be read (not a regular file, over the limit); None when it may.
    (The sandbox makes both impossible; an engine without it, a first-release container, still gets here.)"""
    mode = int(stat.get("mode", 0))
    if mode & _NOT_REGULAR:
        kind = next((words for bit, words in _KINDS if mode & bit), "not a regular file")
        return f"result refused: $RESULT_FILE ({RESULT_PATH}) is {kind}, not a regular file"
    size = int(stat.get("size", 0))
    if size > limit_bytes:
        return (f"result refused: $RESULT_FILE is {size} bytes, over the limit of {limit_bytes} "
                "(LONGSHORE_RESULT_LIMIT_BYTES)")
    return None


def result_from_archive(stream: Iterable[bytes], limit_bytes: int) -> bytes | None:
    """The result file's bytes from the engine's tar of RESULT_PATH, reading at most the limit and a
    tar's overhead; None if it is not a regular file after all."""
    buffer = io.BytesIO()
    for chunk in stream:
        buffer.write(chunk)
        if buffer.tell() > limit_bytes + TAR_OVERHEAD_BYTES:
            break
    buffer.seek(0)
    try:
        archive = tarfile.open(fileobj=buffer)
        member = archive.next()
    except tarfile.TarError:
        return None
    if member is None or not member.isfile():
        return None
    return archive.extractfile(member).read(limit_bytes)
