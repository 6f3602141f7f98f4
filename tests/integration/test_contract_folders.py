"""A job's contract folder: made by its worker on a directory shared with the engine and mounted, or, where
the engine does not see that directory, copied into the container as before; either way gone with it."""

from __future__ import annotations

import os
import time

import pytest

from support.services import HOME

#: A job that reads its payload and config, reports progress, waits a little, and writes its result.
SCRIPT = ('cat "$PAYLOAD_FILE"; echo; echo "40 half way" > "$PROGRESS_FILE"; sleep 3; id -u; '
          'printf \'{"done": true}\' > "$RESULT_FILE"')


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def _container(docker_engine, job_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = docker_engine.api.containers(filters={"label": f"io.longshore.job={job_id}", "status": "running"})
        if found:
            return docker_engine.api.inspect_container(found[0]["Id"])
        time.sleep(0.1)
    raise AssertionError(f"no running container for {job_id}")


def _runs_with_its_contract(client, job) -> None:
    """The job sees its payload, its progress is read while it runs, its result after it ends."""
    deadline = time.monotonic() + 20
    while job.job().progress != 40 and time.monotonic() < deadline:
        time.sleep(0.2)
    status = job.job()
    assert status.progress == 40 and status.progress_message == "half way"
    finished = job.wait(timeout=60)
    assert finished.status.value == "succeeded", finished.error
    assert finished.result == b'{"done": true}'
    assert job.logs().split() == ['{"n":', '7}', "65534"]


def test_a_jobs_contract_folder_is_made_by_its_worker_mounted_and_removed_with_its_container(
        client, start_worker, docker_engine, wait_reaped):
    # Given a worker on the engine's host (it shares LONGSHORE_HOME/contracts with the engine)
    start_worker("busybox")
    # When a job runs
    job = client.submit("busybox", ["sh", "-c", SCRIPT], payload={"n": 7})
    inspected = _container(docker_engine, job.id)
    # Then its contract is a bind of its own folder there, the payload root's and read-only, the result
    # and progress files the job's user's, and no archive was copied in
    [mount] = inspected["Mounts"]
    folder = mount["Source"]
    assert mount["Type"] == "bind" and mount["Destination"] == "/longshore" and mount["RW"]
    assert folder.startswith(str(HOME / "contracts")) and folder.endswith(f"longshore-{job.id}-1")
    payload = os.stat(os.path.join(folder, "payload.json"))
    result = os.stat(os.path.join(folder, "result.json"))
    assert (payload.st_uid, payload.st_mode & 0o777) == (0, 0o444)
    assert (result.st_uid, result.st_gid) == (65534, 65534)
    assert (os.stat(folder).st_uid, os.stat(folder).st_mode & 0o777) == (0, 0o755)
    _runs_with_its_contract(client, job)
    # And the folder goes with its container
    assert wait_reaped([job.id], timeout=30) == []
    assert not os.path.exists(folder)


@pytest.mark.parametrize("how", ["off", "unseen"])
def test_where_the_engine_cannot_share_the_folder_the_contract_is_copied_in_and_jobs_run_alike(
        client, start_worker, docker_engine, wait_reaped, tmp_path, how):
    # Given a worker told not to share a folder, or one whose contract directory the engine does not see (a
    # tmpfs mounted over it in the worker's own mount namespace, as a worker in a container would have)
    if how == "off":
        worker = start_worker("busybox", env={"LONGSHORE_CONTRACT_DIR": "off"})
    else:
        private = tmp_path / "private-contracts"
        private.mkdir()
        worker = start_worker("busybox", env={"LONGSHORE_CONTRACT_DIR": str(private)}, prefix=[
            "unshare", "--mount", "--propagation", "private", "sh", "-c",
            f'mount -t tmpfs tmpfs "{private}" && exec "$0" "$@"'])
    # When a job runs
    job = client.submit("busybox", ["sh", "-c", SCRIPT], payload={"n": 7})
    inspected = _container(docker_engine, job.id)
    # Then its contract is a volume the engine extracted it into, and the job runs as it would with a folder
    [mount] = inspected["Mounts"]
    assert mount["Type"] == "volume" and mount["Destination"] == "/longshore"
    _runs_with_its_contract(client, job)
    if how == "unseen":
        log = worker.log_path.read_text()
        assert "job contracts are copied into each container (slower)" in log
        assert "could not mount" in log, log[-2000:]
    assert wait_reaped([job.id], timeout=30) == []


def test_the_janitor_removes_a_contract_folder_whose_container_is_gone(client, distributed, docker_engine):
    from longshore.service.janitor import run_janitor_pass
    from longshore.service.runtime import get_runtime

    # Given folders a crash left behind ten minutes ago (their container never made, or removed by hand), a
    # fresh one (its container may be being made), and one whose container still exists
    runtime = get_runtime()
    engine_id = runtime.engine.engine_id()
    base = HOME / "contracts" / engine_id
    base.mkdir(parents=True, exist_ok=True)
    leftover, kept = base / "longshore-no-such-container-1", base / "longshore-kept-1"
    partial = base / ".partial-longshore-also-gone-1"
    for folder in (leftover, kept, partial):
        (folder / "task").mkdir(parents=True)
        os.utime(folder, (time.time() - 600, time.time() - 600))
    fresh = base / "longshore-being-made-1"
    (fresh / "task").mkdir(parents=True)
    container = docker_engine.containers.create("longshore/busybox:1", ["true"], name="longshore-kept-1")
    try:
        # When the janitor sweeps the engine, then only the folders without a container go
        report = run_janitor_pass(runtime)
        assert report.removed["leftover contract folder"] == 2
        assert not leftover.exists() and not partial.exists() and kept.exists() and fresh.exists()
    finally:
        container.remove(force=True)
        runtime.engine.remove("longshore-kept-1")
        runtime.engine.remove("longshore-being-made-1")
    assert not kept.exists() and not fresh.exists()
