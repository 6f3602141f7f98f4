"""The job's contract inside its container (IronWorker's names): the payload going in, the result coming out."""

from __future__ import annotations

import io
import tarfile
import time
from typing import Iterable

CONTRACT_DIR = "/longshore"
PAYLOAD_PATH = f"{CONTRACT_DIR}/payload.json"
TASK_DIR = f"{CONTRACT_DIR}/task"
RESULT_PATH = f"{TASK_DIR}/result.json"


def contract_env(job_id: str) -> dict[str, str]:
    """The variables the platform sets in every job's container."""
    return {"TASK_ID": job_id, "PAYLOAD_FILE": PAYLOAD_PATH, "TASK_DIR": TASK_DIR, "RESULT_FILE": RESULT_PATH}


def contract_archive(payload: str) -> bytes:
    """A tar holding the job's contract folder: the payload file and a writable TASK_DIR."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in (CONTRACT_DIR, TASK_DIR):
            folder = tarfile.TarInfo(path.lstrip("/"))
            folder.type, folder.mode, folder.mtime = tarfile.DIRTYPE, 0o1777, time.time()
            archive.addfile(folder)
        data = payload.encode()
        payload_file = tarfile.TarInfo(PAYLOAD_PATH.lstrip("/"))
        payload_file.size, payload_file.mode, payload_file.mtime = len(data), 0o444, time.time()
        archive.addfile(payload_file, io.BytesIO(data))
    return buffer.getvalue()


#: Go's os.FileMode type bits (the engine's stat "mode"): any of them set means not a regular file.
_NOT_REGULAR = (1 << 31) | (1 << 27) | (1 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19)
_KINDS = ((1 << 31, "a directory"), (1 << 27, "a symbolic link"), (1 << 25, "a named pipe"),
          (1 << 24, "a socket"), (1 << 26, "a device"))
#: What a tar adds around one file: a header block and the padding of the last block.
TAR_OVERHEAD_BYTES = 3 * 512


def refuse_result(stat: dict, limit_bytes: int) -> str | None:
    """Why the result file must not be read (not a regular file, over the limit); None when it may."""
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
