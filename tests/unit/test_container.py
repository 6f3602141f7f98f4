"""The sandbox the engine is asked for, and the read-back that catches a dropped field (pure)."""

from __future__ import annotations

import copy

from longshore.engine.container import CONTRACT_DIR, ContainerSpec, SandboxSpec, host_config, unapplied_limits

SPEC = ContainerSpec(
    name="longshore-j-1", image="x:1", command=["true"], env={}, memory_bytes=64 << 20, cpus=0.5,
    disk_bytes=16 << 20, labels={"io.longshore.job": "j", "io.longshore.attempt": "1",
                                 "io.longshore.installation": "i"},
    sandbox=SandboxSpec(runtime="runc", user="65534:65534", pids=256, nofile=1024, nproc=4096, inodes=1000),
    payload="{}", output_limit_bytes=1 << 20)


def applied() -> dict:
    """What an engine that applied everything reads back (the engine's own field names)."""
    config = host_config(SPEC)
    return {
        "Config": {"User": "65534:65534"},
        "HostConfig": {
            "Memory": 80 << 20, "MemorySwap": 80 << 20, "NanoCpus": 500_000_000, "PidsLimit": 256,
            "NetworkMode": "none", "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"], "ReadonlyRootfs": True,
            "Init": True, "Runtime": "runc", "OomScoreAdj": 500, "Privileged": False, "Tmpfs": config["tmpfs"],
            "Ulimits": [{"Name": u["Name"], "Soft": u["Soft"], "Hard": u["Hard"]} for u in config["ulimits"]],
            "Mounts": [{"Type": "volume", "Target": CONTRACT_DIR}],
        },
    }


def test_files_count_against_memory_and_the_scratch_directories_are_bounded():
    config = host_config(SPEC)
    assert config["mem_limit"] == config["memswap_limit"] == 80 << 20  # memory + disk, no swap
    assert config["read_only"] and config["init"] and config["network_mode"] == "none"
    assert config["tmpfs"]["/tmp"] == config["tmpfs"]["/longshore/task"] == \
        "rw,exec,nosuid,nodev,size=16777216,nr_inodes=1000,mode=1777"
    limits = {u["Name"]: (u["Soft"], u["Hard"]) for u in config["ulimits"]}
    assert limits == {"nofile": (1024, 1024), "nproc": (4096, 4096), "core": (0, 0),
                      "fsize": ((17 << 20), (17 << 20))}


def test_an_engine_that_applied_everything_passes_the_read_back():
    assert unapplied_limits(applied(), SPEC) == []


def test_each_dropped_field_is_named():
    for path, value, words in [
        (("HostConfig", "Memory"), 0, "Memory=83886080 (engine has 0)"),
        (("HostConfig", "ReadonlyRootfs"), False, "ReadonlyRootfs=True"),
        (("HostConfig", "Init"), None, "Init=True"),
        (("HostConfig", "Runtime"), "runc2", "Runtime=runc"),
        (("HostConfig", "SecurityOpt"), ["no-new-privileges", "seccomp=unconfined"], "SecurityOpt="),
        (("HostConfig", "Tmpfs"), {"/tmp": ""}, "Tmpfs="),
        (("HostConfig", "Ulimits"), [], "ulimit nofile=1024 (engine has None)"),
        (("HostConfig", "CapAdd"), ["SYS_ADMIN"], "no added capabilities"),
        (("HostConfig", "Mounts"), [], "one volume at /longshore"),
        (("Config", "User"), "", "User=65534:65534 (engine has '')"),
    ]:
        inspected = copy.deepcopy(applied())
        inspected[path[0]][path[1]] = value
        assert any(words in missing for missing in unapplied_limits(inspected, SPEC)), (path, value)
