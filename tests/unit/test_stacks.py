"""The stack manifest: sandbox and bounds as data, refused at load when they make no sense (pure)."""

from __future__ import annotations

import pytest

from longshore.domain.stacks import Ceiling, Resources, Sandbox, StackManifest
from longshore.errors import ConfigError

CEILING = Ceiling(resources=Resources(memory_bytes=1 << 30, cpus=4, disk_bytes=512 << 20, timeout_seconds=3600),
                  pids=1024)


def load(tmp_path, body: str) -> StackManifest:
    path = tmp_path / "stacks.toml"
    path.write_text(body)
    return StackManifest.load(path, CEILING)


def test_a_stack_with_only_an_image_gets_a_safe_sandbox_and_the_installations_maxima(tmp_path):
    stack = load(tmp_path, '[stacks.s]\nimage = "x:1"\n').get("s")
    assert stack.sandbox == Sandbox() and stack.sandbox.user == "65534:65534" and stack.sandbox.runtime == "runc"
    assert stack.maxima == CEILING.resources
    assert (stack.defaults.memory_bytes, stack.defaults.disk_bytes) == (128 << 20, 64 << 20)
    assert stack.allows_image("x:1") and not stack.allows_image("x:2")


def test_image_patterns_are_anchored_and_name_the_registry(tmp_path):
    stack = load(tmp_path, '[stacks.s]\nimage = "x:1"\nimages = ["reg.example.com/team/*"]\n').get("s")
    assert stack.allows_image("reg.example.com/team/app:2")
    assert not stack.allows_image("evil.example.com/reg.example.com/team/app:2")
    assert not stack.allows_image("reg.example.com/other/app:2")


@pytest.mark.parametrize("body,words", [
    ('image = "x"\nuser = "0:0"', "jobs never run as root"),
    ('image = "x"\nuser = "65534:0"', "jobs never run as root (uid 0) or in the root group"),
    ('image = "x"\nuser = "nobody"', "must be a numeric uid:gid"),
    ('image = "x"\nruntime = "run sc"', "is not an OCI runtime name"),
    ('image = "x"\nmax_memory = "2g"', "max_memory 2g is over the installation's LONGSHORE_MAX_MEMORY of 1g"),
    ('image = "x"\nmax_disk = "1g"', "max_disk 1g is over the installation's LONGSHORE_MAX_DISK of 512m"),
    ('image = "x"\nmemory = "256m"\nmax_memory = "128m"', "memory 256m is over the stack's maximum of 128m"),
    ('image = "x"\ncpus = 8', "cpus 8 must be between 0.01 and 4"),
    ('image = "x"\npids = 5000', "pids 5000 must be between 16 and 1024"),
    ('image = "x"\nnofile = 10.5', "nofile must be a whole number"),
    ('image = "x"\nmemroy = "1g"', "unknown key(s) memroy"),
    ('image = "x"\nimages = "x/*"', "images must be a list of image patterns"),
    ('pull = "missing"', "image is required"),
])
def test_a_stack_that_makes_no_sense_stops_the_program_naming_it(tmp_path, body, words):
    with pytest.raises(ConfigError) as refused:
        load(tmp_path, f"[stacks.s]\n{body}\n")
    assert "LONGSHORE_STACKS: stack 's'" in str(refused.value) and words in str(refused.value)


def test_the_shipped_manifest_loads_under_the_default_ceiling():
    from longshore.settings import REPO_STACKS_FILE, Settings

    manifest = StackManifest.load(REPO_STACKS_FILE, Settings.from_env({}).ceiling)
    assert manifest.get("busybox-gvisor").sandbox.runtime == "runsc"
    assert all(s.sandbox.user == "65534:65534" for s in manifest.stacks.values())
