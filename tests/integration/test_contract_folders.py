"""A job's contract folder: made by its worker on a directory shared with the engine and mounted, or, where
the engine does not see that directory, copied into the container as before; either way gone with it."""

from __future__ import annotations

import os
import time

import pytest

from support.helpers import wait_until
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
    # And the folder goes with its container (the reap removes it once the engine said the container is gone)
    assert wait_reaped([job.id], timeout=30) == []
    wait_until(lambda: not os.path.exists(folder), timeout=10, what=f"{folder} removed")


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


def _spec(name: str, installation: str, script: str):
    from longshore.engine.container import ContainerSpec, SandboxSpec

    return ContainerSpec(
        name=name, image="longshore/busybox:1", command=["sh", "-c", script], env={
            "RESULT_FILE": "/longshore/result.json", "PROGRESS_FILE": "/longshore/progress"},
        memory_bytes=64 << 20, cpus=0.5, disk_bytes=16 << 20, payload="{}", output_limit_bytes=1 << 20,
        labels={"io.longshore.job": name, "io.longshore.attempt": "1", "io.longshore.installation": installation},
        sandbox=SandboxSpec(runtime="runc", user="65534:65534", pids=256, nofile=1024, nproc=4096, inodes=1000))


def test_a_contract_is_read_and_adopted_as_its_container_was_made_whatever_folders_exist(distributed, docker_engine):
    from longshore.engine.client import DockerEngine
    from longshore.service.runtime import get_runtime

    runtime = get_runtime()
    sharing = runtime.engine  # shares HOME/contracts with the engine
    copying = DockerEngine(runtime.settings.docker_host, timeout_seconds=30)  # no shared directory
    base = HOME / "contracts" / sharing.engine_id()
    script = 'echo "70 real" > "$PROGRESS_FILE"; printf real > "$RESULT_FILE"'
    copied = _spec(f"longshore-copied-{os.getpid()}-1", runtime.settings.installation, script)
    bound = _spec(f"longshore-bound-{os.getpid()}-1", runtime.settings.installation, script)
    try:
        # Given a container whose contract was copied in (by a worker that does not share), adopted by one
        # that does (a redelivered create): the folder the adopter made is dropped, the container kept as made
        copying.create(copied)
        sharing.create(copied)
        assert not (base / copied.name).exists()
        assert [m["Type"] for m in docker_engine.api.inspect_container(copied.name)["Mounts"]] == ["volume"]
        # And a stale folder of its name with another result in it (a late writer, a crash)
        stale = sharing._contracts().write(copied.name, payload="{}", user="65534:65534", config=None,
                                           code_files=None)
        (stale / "result.json").write_text("stale")
        (stale / "progress").write_text("10 stale")
        # And a container made by the sharing worker, adopted by the copying one: nothing is copied over
        # its folder and the read-back accepts its bind
        sharing.create(bound)
        copying.create(bound)
        for name in (copied.name, bound.name):
            sharing.start(name)
            assert docker_engine.api.wait(name, timeout=30)["StatusCode"] == 0
        # When each is read by either worker, then what it read is what its job wrote
        for engine in (sharing, copying):
            for spec in (copied, bound):
                inspected = engine.inspect(spec.name)
                assert engine.collect(spec.name, output_limit_bytes=1000, result_limit_bytes=1000,
                                      inspected=inspected).result == b"real"
                assert engine.read_progress(spec.name, inspected["Config"]["Labels"], None)[1] == b"70 real\n"
    finally:
        for spec in (copied, bound):
            sharing.remove(spec.name)
    assert not (base / copied.name).exists() and not (base / bound.name).exists()


def test_a_create_that_meets_a_name_freed_as_it_adopts_tries_again_and_makes_one_container(distributed,
                                                                                             docker_engine):
    from longshore.errors import TransientDockerFailure
    from longshore.service.runtime import get_runtime

    engine = get_runtime().engine
    spec = _spec(f"longshore-freed-{os.getpid()}-1", get_runtime().settings.installation, "true")
    # Given a create of the same container that holds its name as this create adopts it, and is not there
    # when it looks (the engine reserves a name before the container exists; frees it when it refuses)
    holder = docker_engine.api.create_container("longshore/busybox:1", ["true"], name=spec.name)
    inspect = engine._api.inspect_container

    def freed_first(container, *args, **kwargs):
        if container == spec.name and docker_engine.api.containers(all=True, filters={"id": holder["Id"]}):
            docker_engine.api.remove_container(holder["Id"], force=True)
        return inspect(container, *args, **kwargs)

    engine._api.inspect_container = freed_first
    try:
        # When it creates, then it says so as a failure worth a retry (not the job's failure: the last CI
        # failed a job with "No such container"), and the retry makes the container
        with pytest.raises(TransientDockerFailure, match="in the way and is not there"):
            engine.create(spec)
        container_id = engine.create(spec)
        made = docker_engine.api.inspect_container(spec.name)
        assert made["Id"] == container_id != holder["Id"]
        # with its contract folder, which the failure left for it
        assert [m["Source"] for m in made["Mounts"] if m["Type"] == "bind"] == [
            str(HOME / "contracts" / engine.engine_id() / spec.name)]
    finally:
        del engine._api.inspect_container  # the client's own method again
        engine.remove(spec.name)
