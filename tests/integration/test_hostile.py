"""Hostile jobs against the sandbox, on runc and under gVisor: each ends with the right status and a clear
error, the worker and the host are unharmed, and nothing is left (docs/security.md is the table of these).

Each job runs with a small bound, so the whole suite takes about a minute.
"""

from __future__ import annotations

import shutil
import time

import pytest

from longshore.domain.steps import container_name
from support.services import HOME


@pytest.fixture(scope="module")
def hostile(distributed, docker_engine):
    import longshore

    return longshore


@pytest.fixture
def worker(start_worker):
    return start_worker("busybox,gvisor", slots=4)


def run(client, script: str, *, stack: str = "busybox", timeout: float = 30, **fields):
    job = client.submit(stack, ["sh", "-c", script], timeout=timeout, **fields)
    return job, job.wait(timeout=timeout + 60)


def test_a_fork_bomb_is_held_by_the_pids_limit_and_killed_at_its_timeout(hostile, worker, wait_reaped):
    # The shell forks once, for a subshell that starts the bomb, before any bomb runs, then becomes its sleep:
    # a fork of its own after the bomb began could meet the limit the bomb reached, and the shell would exit 2
    # before its timeout (two CI runs showed it: a pipeline started in the shell itself is two forks)
    job, done = run(hostile, "(bomb() { bomb | bomb & }; bomb) & exec sleep 100", timeout=8)
    assert done.status.value == "timed_out", done.error
    assert "past its timeout of 8 seconds" in done.error
    assert wait_reaped([job.id]) == []


def test_a_memory_bomb_is_killed_out_of_memory_naming_the_limit(hostile, worker, wait_reaped):
    job, done = run(hostile, "head -c 400000000 /dev/zero | tail -c 300000000 >/dev/null")
    assert done.status.value == "oom_killed"
    assert "out of memory (limit 80 MiB: its memory 64 MiB and its disk 16 MiB" in done.error
    assert wait_reaped([job.id]) == []


def test_filling_the_disk_stops_at_the_jobs_limit_and_the_hosts_disk_is_untouched(hostile, worker, wait_reaped):
    free_before = shutil.disk_usage("/var/lib/docker").free
    job, done = run(hostile, 'dd if=/dev/zero of="$TASK_DIR/fill" bs=1M count=1500; '
                             'dd if=/dev/zero of=/tmp/fill bs=1M count=1500; exit 1')
    assert done.status.value == "failed"
    assert ("its output says it ran out of disk: TASK_DIR and /tmp hold at most 16 MiB and 4096 files each (its disk limit"
            in done.error)
    assert job.logs().count("No space left on device") == 2
    assert abs(shutil.disk_usage("/var/lib/docker").free - free_before) < 100 << 20  # (other tests run too)
    assert wait_reaped([job.id]) == []


def test_running_out_of_inodes_fails_writes_not_the_host(hostile, worker):
    script = 'i=0; while echo -n > "$TASK_DIR/f$i"; do i=$((i+1)); done; echo "made $i files"; exit 1'
    job, done = run(hostile, script)
    assert done.status.value == "failed"
    assert "ran out of disk: TASK_DIR and /tmp hold at most 16 MiB and 4096 files each" in done.error
    assert "made 4095 files" in job.logs()  # the test stack's `inodes`, less the directory itself


def test_an_output_flood_keeps_the_last_mebibyte(hostile, worker):
    job, done = run(hostile, "yes flood | head -c 60000000; echo the-end")
    assert done.status.value == "succeeded" and done.output_truncated
    assert len(job.output()) == 1 << 20 and job.output().endswith(b"flood\nthe-end\n")


def test_a_cpu_burn_does_not_slow_a_job_beside_it(hostile, worker):
    burn = hostile.submit("busybox", ["sh", "-c", "while :; do :; done"], timeout=20, cpus=0.5)
    time.sleep(1)
    started = time.monotonic()
    _, done = run(hostile, "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; echo counted", cpus=0.5)
    assert done.status.value == "succeeded" and time.monotonic() - started < 10
    burn.cancel()
    assert burn.wait(timeout=30).status.value == "cancelled"


PROBES = r"""
(wget -q -T 3 -O- http://1.1.1.1/ || echo egress-refused) 2>&1 | tail -1
grep -c : /proc/net/dev | sed 's/^/interfaces=/'
ls /var/run/docker.sock /run/docker.sock 2>/dev/null || echo no-docker-socket
(echo b > /proc/sysrq-trigger) 2>/dev/null || echo sysrq-refused
(head -c1 /proc/kcore >/dev/null) 2>/dev/null || echo kcore-refused
(echo 1 > /proc/sys/kernel/panic) 2>/dev/null || echo proc-sys-refused
(echo x > /sys/kernel/uevent_helper) 2>/dev/null || echo sys-refused
(mount -t tmpfs none /mnt) 2>/dev/null || echo mount-refused
(chroot / true) 2>/dev/null || echo chroot-refused
(touch /etc/x) 2>/dev/null || echo root-read-only
(touch /longshore/x) 2>/dev/null || echo contract-read-only
(chown 0 "$RESULT_FILE") 2>/dev/null || echo chown-refused
(mknod "$TASK_DIR/null" c 1 3) 2>/dev/null || echo mknod-refused
grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status
echo "ulimits c=$(ulimit -c) n=$(ulimit -n) u=$(ulimit -u)"
echo "processes=$(ls -d /proc/[0-9]* | wc -l)"
id -u
"""
REFUSED = ["egress-refused", "no-docker-socket", "sysrq-refused", "kcore-refused", "proc-sys-refused",
           "sys-refused", "mount-refused", "chroot-refused", "root-read-only", "contract-read-only", "chown-refused",
           "ulimits c=0 n=1024 u=4096"]


@pytest.mark.parametrize("stack", ["busybox", "gvisor"])
def test_probes_of_the_network_the_engine_the_kernel_and_privileges_all_fail(hostile, worker, stack):
    job, done = run(hostile, PROBES, stack=stack)
    output = job.logs()
    assert done.status.value == "succeeded", (done.error, output)
    for refused in REFUSED:
        assert refused in output, (refused, output)
    assert "interfaces=1" in output  # only loopback
    assert "CapEff:\t0000000000000000" in output and "CapBnd:\t0000000000000000" in output
    assert output.strip().endswith("65534")
    if stack == "busybox":
        assert "NoNewPrivs:\t1" in output and "Seccomp:\t2" in output  # the engine's default profile
        assert "mknod-refused" in output  # (gVisor lets it make a node of its own emulated devices)
    processes = int(output.split("processes=")[1].split()[0])
    assert processes < 10  # its own, never the host's


def test_a_job_proves_it_ran_under_gvisor(hostile, worker):
    job, done = run(hostile, "dmesg | head -1; cat /proc/version", stack="gvisor")
    assert done.status.value == "succeeded", done.error
    assert "Starting gVisor" in job.logs()
    job, done = run(hostile, "cat /proc/version", stack="busybox")
    assert "gVisor" not in job.logs() and "4.4.0 #1 SMP Sun Jan 10 15:06:54 PST 2016" not in job.logs()


def test_no_core_dump_is_written(hostile, worker):
    job, done = run(hostile, 'cd "$TASK_DIR"; sh -c "kill -SEGV \\$\\$"; echo "crashed=$?"; ls -A; echo "core=$(ulimit -c)"')
    assert done.status.value == "succeeded"
    lines = job.logs().splitlines()  # the shell's "Segmentation fault" (stderr) may come anywhere in the log
    assert "crashed=139" in lines and "core=0" in lines  # a crash, no core limit ...
    assert set(lines) <= {"crashed=139", "core=0", "Segmentation fault"}, lines  # ... and no file (core) written


def test_a_job_ignoring_sigterm_is_killed_at_its_timeout(hostile, worker, wait_reaped):
    started = time.monotonic()
    job, done = run(hostile, "trap '' TERM; while :; do sleep 1; done", timeout=3)
    assert done.status.value == "timed_out" and time.monotonic() - started < 15
    assert wait_reaped([job.id]) == []


def test_orphaned_background_processes_end_with_the_job(hostile, worker, wait_reaped, docker_engine):
    started = time.monotonic()
    job, done = run(hostile, "sleep 1000 & sleep 1000 & echo left-behind", timeout=60)
    assert done.status.value == "succeeded" and time.monotonic() - started < 15
    assert wait_reaped([job.id]) == []


def test_opening_100k_files_stops_at_the_nofile_limit(hostile, worker):
    script = '( i=3; while [ $i -lt 100000 ]; do eval "exec $i</dev/null" || exit; echo $i; i=$((i+1)); done ) ' \
             '| tail -n1'
    job, done = run(hostile, script)
    assert done.status.value == "succeeded"
    logs = job.logs()  # stderr and stdout interleave in either order
    assert "Too many open files" in logs and logs.split().count("1023") == 1, logs  # fds 0-1023: nofile 1024
    assert "1024" not in logs, logs


def test_a_payload_at_its_limit_is_delivered_and_one_byte_over_is_refused_leaving_nothing(hostile, worker):
    from longshore.errors import InvalidJob
    from longshore.service.runtime import get_runtime

    limit = get_runtime().settings.jobs.payload_limit_bytes
    at_limit = "x" * (limit - 2)  # JSON adds the two quotes
    job, done = run(hostile, 'wc -c < "$PAYLOAD_FILE"', payload=at_limit)
    assert done.status.value == "succeeded" and job.logs().strip() == str(limit)
    counted = _jobs_stored()
    with pytest.raises(InvalidJob, match=f"payload: {limit + 1} bytes as JSON, over the limit of {limit}"):
        hostile.submit("busybox", ["true"], payload=at_limit + "x")
    assert _jobs_stored() == counted


def test_a_stack_whose_runtime_the_engine_lacks_fails_at_once_and_for_good(hostile, start_worker, tmp_path):
    # Given a worker whose manifest runs the busybox stack with a runtime this engine does not have
    start_worker("busybox", env={"LONGSHORE_STACKS": str(_manifest_with_missing_runtime(tmp_path))})
    # When a job runs on it, then it fails at once, permanently, naming the runtime and the engine's
    started = time.monotonic()
    job = hostile.submit("busybox", ["true"])
    done = job.wait(timeout=60)
    assert done.status.value == "failed" and time.monotonic() - started < 15
    assert "OCI runtime 'no-such-runtime', which this Docker engine does not have (it has: " in done.error
    assert "runc" in done.error and "runsc" in done.error  # the list of what it has (varies by engine version)
    assert len(job.attempts()) == 1 and job.attempts()[0].infra_retries == 0
    # and its contract folder went with the refusal, not later with a reap
    assert not list((HOME / "contracts").glob(f"*/{container_name(job.id, 1)}*"))


def test_the_worker_and_the_host_are_unharmed_and_nothing_is_left(hostile, worker, docker_engine):
    from longshore.service.runtime import get_runtime

    _, done = run(hostile, "echo still-working")
    assert done.status.value == "succeeded" and worker.process.poll() is None
    installation = get_runtime().settings.installation
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        volumes = docker_engine.api.volumes(filters={"label": f"io.longshore.installation={installation}"})
        if not (volumes.get("Volumes") or []):
            break
        time.sleep(0.5)
    assert not (volumes.get("Volumes") or []), "contract volumes left behind"


def _jobs_stored() -> int:
    import sqlalchemy as sa

    from longshore.service.runtime import get_runtime
    from longshore.store.schema import jobs

    with get_runtime().store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(jobs)).scalar_one()


def _manifest_with_missing_runtime(tmp_path):
    path = tmp_path / "stacks.toml"
    path.write_text('[stacks.busybox]\nimage = "longshore/busybox:1"\nruntime = "no-such-runtime"\n')
    return path
