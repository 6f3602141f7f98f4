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


def test_a_job_cannot_swap_its_result_file_for_a_directory_or_a_link(client, start_worker):
    # Given a job that tries to replace $RESULT_FILE with a directory, or a link to a file outside its folder
    start_worker("busybox")
    script = ('rm -f "$RESULT_FILE" || echo no-rm; mkdir "$RESULT_FILE" 2>/dev/null || echo no-mkdir; '
              'ln -sf /etc/passwd "$RESULT_FILE" 2>/dev/null || echo no-link; ls -l "$RESULT_FILE"')
    job = client.submit("busybox", ["sh", "-c", script])
    # When it runs, then every swap fails (the contract folder is root's) and the result is only what it wrote
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and finished.result is None and finished.error is None
    output = job.logs()
    assert "no-rm" in output and "no-mkdir" in output and "no-link" in output and "-rw-r--r--" in output


def test_a_result_file_bomb_stops_at_the_disk_limit_and_is_never_read(client, start_worker, wait_reaped):
    # Given a worker, and a job that writes 500 MB into its result file (which lives on the engine's disk)
    worker = start_worker("busybox", slots=1)
    before = _rss_kib(worker.process.pid)
    script = 'exec dd if=/dev/zero of="$RESULT_FILE" bs=1M count=500'
    job = client.submit("busybox", ["sh", "-c", script], timeout=100, disk="32m")
    # When it ends, then the file stopped at the disk limit (RLIMIT_FSIZE killed the writer), the job says so,
    # its result is refused without being read, and the worker read none of it
    finished = job.wait(timeout=120)
    assert finished.status.value == "failed" and finished.exit_code == 153 and finished.result is None
    assert "killed (SIGXFSZ): it wrote a file past the largest size allowed, its disk limit of 32 MiB" in finished.error
    assert "is 34603008 bytes, over the limit of 1048576" in finished.error
    assert _rss_kib(worker.process.pid) - before < 50 * 1024
    assert wait_reaped([job.id], timeout=30) == []


def test_a_result_over_its_limit_is_refused_naming_the_limit(client, start_worker):
    start_worker("busybox")
    job = client.submit("busybox", ["sh", "-c", 'head -c 2000000 /dev/zero > "$RESULT_FILE"'])
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded" and finished.result is None
    assert "is 2000000 bytes, over the limit of 1048576 (LONGSHORE_RESULT_LIMIT_BYTES)" in finished.error
