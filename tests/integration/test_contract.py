"""What a job leaves is kept as it wrote it, and what the store cannot take is refused without harm."""

from __future__ import annotations

import os
import subprocess

import pytest



@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def test_nul_and_invalid_utf8_in_output_and_result_come_back_as_written(client, start_worker, distributed):
    # Given a job on PostgreSQL that writes NUL and bytes that are not UTF-8, to stdout and to its result
    start_worker("busybox")
    script = r"""printf 'a\000b\377c\n'; printf '\000\376{}' > "$RESULT_FILE" """
    job = client.submit("busybox", ["sh", "-c", script])
    # When it runs, then it succeeds and every byte comes back
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded", finished.error
    assert job.output() == b"a\x00b\xffc\n"
    assert finished.result == b"\x00\xfe{}"
    logs = subprocess.run(["longshore", "logs", job.id], capture_output=True, timeout=30,
                          env={**os.environ, **distributed})
    assert logs.stdout == b"a\x00b\xffc\n"


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (the worker's pool), in KiB."""
    total = 0
    for child in [pid, *map(int, subprocess.run(["pgrep", "-g", str(os.getpgid(pid))], capture_output=True,
                                               text=True).stdout.split())]:
        try:
            for line in open(f"/proc/{child}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def test_a_result_that_is_a_huge_directory_is_refused_without_being_read(client, start_worker, wait_reaped):
    # Given a worker, and a job that makes its result file a directory holding 500 MB
    worker = start_worker("busybox", slots=1)
    before = _rss_kib(worker.process.pid)
    script = 'mkdir "$RESULT_FILE" && dd if=/dev/zero of="$RESULT_FILE/x" bs=1M count=500 2>/dev/null; echo wrote'
    job = client.submit("busybox", ["sh", "-c", script], timeout=100)
    # When it ends, then its result is refused with a clear error, and the worker read none of it
    finished = job.wait(timeout=120)
    assert finished.status.value == "succeeded" and finished.result is None
    assert "result refused: $RESULT_FILE (/longshore/task/result.json) is a directory" in finished.error
    assert _rss_kib(worker.process.pid) - before < 50 * 1024
    assert wait_reaped([job.id], timeout=30) == []


def test_a_result_over_its_limit_is_refused_naming_the_limit(client, start_worker):
    start_worker("busybox")
    job = client.submit("busybox", ["sh", "-c", 'head -c 2000000 /dev/zero > "$RESULT_FILE"'])
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and finished.result is None
    assert "is 2000000 bytes, over the limit of 1048576 (LONGSHORE_RESULT_LIMIT_BYTES)" in finished.error
