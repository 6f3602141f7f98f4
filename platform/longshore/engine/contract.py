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


def result_from_archive(stream: Iterable[bytes], limit_bytes: int) -> str | None:
    """The result file's text from the engine's tar of RESULT_PATH; None if it is not a regular file."""
    archive = tarfile.open(fileobj=io.BytesIO(b"".join(stream)))
    member = archive.next()
    if member is None or not member.isfile():
        return None
    return archive.extractfile(member).read(limit_bytes).decode("utf-8", "replace")
