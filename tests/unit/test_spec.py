"""The job validator: what it accepts, what it refuses and the words it uses (pure: no services)."""

from __future__ import annotations

from pathlib import Path

import pytest

from longshore.domain.spec import JobLimits, build_job
from longshore.domain.stacks import Ceiling, Resources, StackManifest
from longshore.errors import InvalidJob, UnknownStack

CEILING = Ceiling(resources=Resources(memory_bytes=4 << 30, cpus=8, disk_bytes=1 << 30, timeout_seconds=600))
MANIFEST = StackManifest.load(Path(__file__).resolve().parents[1] / "support" / "stacks.toml", CEILING)
LIMITS = JobLimits(default_stack="busybox", payload_limit_bytes=64, default_timeout_seconds=3600, max_retries=10,
                   max_retry_delay_seconds=900)


def build(**fields):
    return build_job(MANIFEST, LIMITS, **{"stack": None, "command": ["true"], **fields})


def test_defaults_come_from_the_stack_and_the_limits():
    job = build()
    assert (job.stack, job.image, job.memory_bytes, job.cpus) == ("busybox", "longshore/busybox:1", 64 << 20, 0.5)
    assert job.disk_bytes == 16 << 20 and job.secret_env == {}
    assert job.timeout_seconds == 120 and job.payload == "{}" and job.command == ["true"]


def test_a_stack_with_no_timeout_gets_the_installations_default_capped_by_its_maximum(tmp_path):
    (tmp_path / "stacks.toml").write_text('[stacks.plain]\nimage = "longshore/busybox:1"\n')
    manifest = StackManifest.load(tmp_path / "stacks.toml", CEILING)
    assert build_job(manifest, LIMITS, stack="plain", command=None).timeout_seconds == 600


@pytest.mark.parametrize("fields,words", [
    ({"stack": "cobol"}, "stack: unknown stack 'cobol'; known stacks: alpha, beta, busybox, fresh, gvisor"),
    ({"stack": ["busybox"]}, "stack: must be a stack name"),
    ({"command": "echo hi"}, "command: must be a list of strings"),
    ({"command": ["echo", 1]}, "command: must be a list of strings"),
    ({"command": {"rm": 1, "-rf": 2}}, "command: must be a list of strings"),
    ({"command": ["x"] * 1025}, "command: has 1025 arguments, over the limit of 1024"),
    ({"command": ["x" * (33 << 10)]}, "command: an argument of 33792 bytes is over the limit of 32768"),
    ({"command": ["x" * (30 << 10)] * 5}, "command: 153600 bytes in all, over the limit of 131072"),
    ({"command": ["echo", "a\x00b"]}, "command: must not contain a NUL character"),
    ({"env": {"1BAD": "x"}}, "env: '1BAD' is not a variable name"),
    ({"env": {"FOO\n": "x"}}, "env: 'FOO\\n' is not a variable name"),
    ({"env": {"TASK_ID": "x"}}, "env: TASK_ID is set by the platform"),
    ({"env": {"HOME": "/"}}, "env: HOME is set by the platform"),
    ({"env": {"N": 1}}, "env.N: must be a mapping of variable names to strings"),
    ({"env": "A=B"}, "env: must be a mapping"),
    ({"env": {"A": "x" * (33 << 10)}}, "env.A: 33792 bytes is over the limit of 32768 bytes"),
    ({"env": {f"V{i}": "x" for i in range(257)}}, "env: 257 variables with secret_env, over the limit of 256"),
    ({"env": {"A": "a\x00"}}, "env: must not contain a NUL character"),
    ({"secret_env": {"TOKEN": 5}}, "secret_env.TOKEN: must be a mapping of variable names to strings"),
    ({"secret_env": {"A": "x" * (33 << 10)}}, "secret_env.A: its value is over the limit"),
    ({"env": {"A": "1"}, "secret_env": {"A": "2"}}, "secret_env: A is also in env"),
    ({"payload": {"x": object()}}, "payload: is not JSON"),
    ({"payload": {"x": float("nan")}}, "payload: is not JSON"),
    ({"payload": "x" * 100}, "payload: 102 bytes as JSON, over the limit of 64"),
    ({"payload": {"k": "a\x00"}}, "payload: must not contain a NUL character"),
    ({"timeout": 0}, "timeout: 0 must be over 0 and at most 600 seconds"),
    ({"timeout": 601}, "timeout: 601 must be over 0 and at most 600 seconds"),
    ({"timeout": True}, "timeout: must be a number of seconds"),
    ({"timeout": "abc"}, "timeout: must be a number of seconds"),
    ({"timeout": float("nan")}, "timeout: must be a finite number"),
    ({"cpus": 0}, "cpus: 0 must be between 0.01 and stack busybox's maximum of 8"),
    ({"cpus": 65}, "cpus: 65 must be between 0.01 and stack busybox's maximum of 8"),
    ({"image": "has space"}, "image: 'has space' is not an image reference"),
    ({"image": ""}, "image: '' is not an image reference"),
    ({"image": "Upper/Case:1"}, "image: 'Upper/Case:1' is not an image reference"),
    ({"image": "a" * 300}, "image: over the limit of 255 bytes"),
    ({"image": "evil.example.com/x:1"}, "image: 'evil.example.com/x:1' is not allowed on stack busybox; allowed: "
                                        "longshore/busybox:1, longshore/*, 127.0.0.1:5000/*"),
    ({"stack": "alpha", "image": "127.0.0.1:5000/x:1"}, "not allowed on stack alpha; allowed: longshore/busybox:1"),
    ({"retries": 11}, "retries: 11 must be from 0 to 10"),
    ({"retries": True}, "retries: must be a whole number"),
    ({"retries": 1.0}, "retries: must be a whole number"),
    ({"retry_delay": 901}, "retry_delay: 901 must be between 0 and 900 seconds"),
    ({"memory": "lots"}, "memory: 'lots' is not a size like 128m"),
    ({"memory": "1m"}, "memory: '1m' is below the minimum of 6m"),
    ({"memory": "1000g"}, "memory: 1000g is over stack busybox's maximum of 4g"),
    ({"memory": "99999999999g"}, "memory: 99999999999g is over stack busybox's maximum of 4g"),
    ({"memory": "9" * 40}, "memory: '9999999999999999999999999999999999999999' is not a size"),
    ({"memory": True}, "memory: must be a size"),
    ({"disk": "129m"}, "disk: 129m is over stack busybox's maximum of 128m"),
    ({"disk": "512k"}, "disk: '512k' is below the minimum of 1m"),
    ({"job_id": "x" * 65}, "job_id: must be 1 to 64 letters, digits"),
    ({"job_id": "../etc"}, "job_id: must be 1 to 64 letters, digits"),
    ({"priorty": 2}, "priorty: is not a field of a job (its fields: stack, command, payload, env, secret_env"),
    ({"priority": 3}, "priority: 3 must be 0, 1 or 2"),
    ({"priority": -1}, "priority: -1 must be 0, 1 or 2"),
    ({"priority": True}, "priority: must be 0, 1 or 2"),
    ({"priority": "2"}, "priority: must be 0, 1 or 2"),
    ({"delay": 7 * 86400 + 1}, "delay: 604801 must be from 0 to 604800 seconds (7 days)"),
    ({"delay": -1}, "delay: -1 must be from 0"),
    ({"delay": float("inf")}, "delay: must be a finite number"),
    ({"label": ""}, "label: must be 1 to 100 printable characters"),
    ({"label": "x" * 101}, "label: must be 1 to 100 printable characters"),
    ({"label": "a\nb"}, "label: must be 1 to 100 printable characters"),
    ({"label": 5}, "label: must be a string"),
])
def test_bad_fields_are_refused_naming_the_field_and_the_rule(fields, words):
    with pytest.raises(InvalidJob) as refused:
        build(**fields)
    assert words in str(refused.value)


def test_a_secret_value_never_appears_in_an_error():
    for secret_env in ({"TOKEN": "hunter2" * 5000}, {"TOKEN": 12345}, {"TOKEN": "hunter2\x00"}):
        with pytest.raises(InvalidJob) as refused:
            build(secret_env=secret_env)
        assert "hunter2" not in str(refused.value) and "12345" not in str(refused.value)


def test_secrets_are_kept_out_of_the_records_repr():
    job = build(secret_env={"TOKEN": "hunter2"})
    assert job.secret_env == {"TOKEN": "hunter2"} and "hunter2" not in repr(job)


def test_an_unknown_stack_is_its_own_kind_of_invalid_job():
    with pytest.raises(UnknownStack):
        build(stack="cobol")


def test_an_empty_command_means_the_images_own_and_a_tuple_is_a_list():
    assert build(command=[]).command is None
    assert build(command=("echo", "hi")).command == ["echo", "hi"]


def test_allowed_images_and_sizes_within_the_stack_are_accepted():
    job = build(image="127.0.0.1:5000/team/app@sha256:" + "a" * 64, memory="512m", disk="128m", cpus=8, timeout=600)
    assert (job.memory_bytes, job.disk_bytes, job.cpus) == (512 << 20, 128 << 20, 8)


def test_a_given_job_id_is_kept():
    assert build(job_id="abc-123_X").id == "abc-123_X"


def test_priority_delay_and_label_are_kept_as_given():
    job = build(priority=2, delay=30, label="nightly report · eu")
    assert (job.priority, job.delay_seconds, job.label) == (2, 30.0, "nightly report · eu")
    assert (build().priority, build().delay_seconds, build().label) == (0, 0.0, None)


@pytest.mark.parametrize("text, shown", [
    ('{"a": [1, 2.5]}', {"a": [1, 2.5]}), ("hello", "hello"),
    # not JSON, though Python's parser takes them: shown as the text they are (a view must stay JSON)
    ("NaN", "NaN"), ('{"a": -Infinity}', '{"a": -Infinity}'), ("1e400", "1e400")])
def test_a_jobs_view_shows_a_json_payload_parsed_and_any_other_as_its_text(text, shown):
    import json

    from longshore.domain.records import Job
    from longshore.domain.status import JobStatus

    job = Job(id="j", stack="busybox", image="i", command=None, env={}, payload=text, timeout_seconds=1,
              memory_bytes=1, cpus=1, disk_bytes=1, secret_names=[], sealed_secret_env=None, status=JobStatus.QUEUED,
              attempt=1, retries=0, retries_used=0, retry_delay_seconds=0, published_at=None, requeues=0,
              not_before=None, exit_code=None, error=None, result=None, output=None, output_truncated=False,
              created_at=0, started_at=None, finished_at=None)
    view = job.to_dict()
    assert view["payload"] == shown
    json.dumps(view, allow_nan=False)  # what the API answers
