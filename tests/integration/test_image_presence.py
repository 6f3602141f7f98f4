"""A pull step asks the engine for the job's image at most once a minute per process (it was one engine call per
job; `docker run` asks none); a create that finds the image removed since pulls it again and goes on. Against the
real engine and the local registry."""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid

import pytest

from longshore.engine.client import DockerEngine
from longshore.engine.container import ContainerSpec, SandboxSpec
from longshore.engine.contract import PAYLOAD_PATH
from longshore.errors import DockerFailure, FailureKind
from support.services import IMAGE


def spec(image: str, installation: str = "image-test", command: tuple[str, ...] = ("true",)) -> ContainerSpec:
    name = f"longshore-image-test-{uuid.uuid4().hex[:8]}"
    return ContainerSpec(
        name=name, image=image, command=list(command), env={}, memory_bytes=64 << 20, cpus=0.5, disk_bytes=16 << 20,
        payload='{"from": "the payload"}', output_limit_bytes=1 << 20,
        labels={"io.longshore.job": name, "io.longshore.attempt": "1", "io.longshore.installation": installation},
        sandbox=SandboxSpec(runtime="runc", user="65534:65534", pids=256, nofile=1024, nproc=4096, inodes=1000))


def test_an_image_seen_is_not_asked_for_again_and_one_removed_since_is_pulled_again_by_the_create(
        registry_only_image, docker_engine):
    calls: list[tuple[str, str]] = []
    engine = DockerEngine(None, timeout_seconds=60, on_call=lambda step, outcome, _s: calls.append((step, outcome)))
    made = []
    try:
        # Given an image only in the registry: the first pull step asks the engine, then pulls it
        assert engine.ensure_image(registry_only_image, always_pull=False) is True
        # When the next jobs' pull steps make it present: no engine call (a stack that always pulls still pulls)
        calls.clear()
        assert engine.ensure_image(registry_only_image, always_pull=False) is False
        assert calls == []
        assert engine.ensure_image(registry_only_image, always_pull=True) is True and calls == [("pull", "ok")]
        # When an operator removes it from the engine, the pull step still trusts what it saw
        docker_engine.images.remove(registry_only_image, force=True)
        assert engine.ensure_image(registry_only_image, always_pull=False) is False
        # Then the create that finds it gone pulls it again and makes the container
        first = spec(registry_only_image)
        made.append(first.name)
        assert engine.create(first)
        assert docker_engine.api.inspect_container(first.name)["Config"]["Image"] == registry_only_image
        # And a create refused for another reason (an OCI runtime the engine lacks) is not taken for a gone image
        calls.clear()
        other = spec(registry_only_image)
        other = dataclasses.replace(other, sandbox=dataclasses.replace(other.sandbox, runtime="no-such-runtime"))
        made.append(other.name)
        with pytest.raises(DockerFailure) as refused:
            engine.create(other)
        assert refused.value.kind is FailureKind.PERMANENT and "no-such-runtime" in str(refused.value)
        assert ("pull", "ok") not in calls  # nothing was pulled for it
    finally:
        for name in made:
            engine.remove(name)


def test_a_create_that_pulls_again_shows_progress_and_writes_its_contract_folder_again(
        distributed, registry_only_image, docker_engine, monkeypatch):
    from longshore.engine import images
    from longshore.service.runtime import get_runtime

    runtime = get_runtime()
    engine = runtime.engine  # shares LONGSHORE_HOME/contracts with the engine
    made = [spec(IMAGE, runtime.settings.installation)]
    try:
        engine.create(made[0])  # proves, with an image the engine has, that it sees the contract folders
        assert engine._contracts().folder(made[0].name).is_dir()
        # Given a pull step that saw the image a moment ago, and an operator who removed it since
        engine.ensure_image(registry_only_image, always_pull=False)
        docker_engine.images.remove(registry_only_image, force=True)
        # When the create pulls it again, long enough for the sweep to take the folder with no container
        monkeypatch.setattr(images, "PULL_PROGRESS_SECONDS", 0.0)
        job = spec(registry_only_image, runtime.settings.installation, ("cat", PAYLOAD_PATH))
        made.append(job)
        progress = []

        def swept() -> None:
            progress.append(time.monotonic())
            shutil.rmtree(engine._contracts().folder(job.name), ignore_errors=True)

        engine.create(job, on_progress=swept)
        # Then it said it was under way (the watcher sees no stall), and its container runs with its contract
        assert progress
        engine.start(job.name)
        assert docker_engine.api.wait(job.name, timeout=30)["StatusCode"] == 0
        assert docker_engine.api.logs(job.name) == b'{"from": "the payload"}'
    finally:
        for made_spec in made:
            engine.remove(made_spec.name)
