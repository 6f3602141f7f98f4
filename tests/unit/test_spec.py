"""The job validator: what it accepts, what it refuses and the words it uses (pure: no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshore.domain.spec import JobLimits, build_job
from longshore.domain.stacks import StackManifest
from longshore.errors import InvalidJob, UnknownStack

MANIFEST = StackManifest.load(Path(__file__).resolve().parents[1] / "support" / "stacks.toml")
LIMITS = JobLimits(default_stack="busybox", payload_limit_bytes=64, default_timeout_seconds=3600,
                   max_timeout_seconds=600, max_retries=10, max_retry_delay_seconds=900)


def build(**fields):
    return build_job(MANIFEST, LIMITS, **{"stack": None, "command": ["true"], **fields})


def test_defaults_come_from_the_stack_and_the_limits():
    job = build()
    assert (job.stack, job.image, job.memory_bytes, job.cpus) == ("busybox", "longshore/busybox:1", 64 << 20, 0.5)
    assert job.timeout_seconds == 120 and job.payload == "{}" and job.command == ["true"]


def test_a_stack_timeout_above_the_maximum_is_capped():
    assert build_job(MANIFEST, JobLimits(**{**LIMITS.__dict__, "max_timeout_seconds": 60}), stack="busybox",
                     command=None).timeout_seconds == 60


@pytest.mark.parametrize("fields,words", [
    ({"stack": "cobol"}, "unknown stack 'cobol'; known stacks: alpha, beta, busybox, fresh"),
    ({"command": "echo hi"}, "command must be a list of strings"),
    ({"command": ["echo", 1]}, "command must be a list of strings"),
    ({"env": {"1BAD": "x"}}, "env name '1BAD' is not a valid variable name"),
    ({"env": {"TASK_ID": "x"}}, "env name 'TASK_ID' is set by the platform"),
    ({"env": {"N": 1}}, "env N must be a string, not int"),
    ({"payload": {"x": object()}}, "payload is not JSON-serialisable"),
    ({"payload": "x" * 100}, "over the limit of 64"),
    ({"timeout": 0}, "timeout 0 must be between 0 and 600 seconds"),
    ({"timeout": 601}, "timeout 601 must be between 0 and 600 seconds"),
    ({"cpus": 0}, "cpus 0 must be between 0.01 and 64"),
    ({"cpus": 65}, "cpus 65 must be between 0.01 and 64"),
    ({"image": "has space"}, "is not an image reference"),
    ({"image": ""}, "is not an image reference"),
    ({"retries": 11}, "retries 11 must be a whole number from 0 to 10"),
    ({"retries": True}, "retries True must be a whole number"),
    ({"retry_delay": 901}, "retry_delay 901 must be between 0 and 900 seconds"),
    ({"memory": "lots"}, "memory 'lots' is not a size like 128m"),
    ({"memory": "1m"}, "memory '1m' is below the minimum of 6m"),
])
def test_bad_fields_are_refused_naming_the_problem(fields, words):
    with pytest.raises(InvalidJob) as refused:
        build(**fields)
    assert words in str(refused.value)


def test_an_unknown_stack_is_its_own_kind_of_invalid_job():
    with pytest.raises(UnknownStack):
        build(stack="cobol")


def test_an_empty_command_means_the_images_own():
    assert build(command=[]).command is None


def test_a_given_job_id_is_kept():
    assert build(job_id="abc").id == "abc"
