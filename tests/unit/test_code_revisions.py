"""Codes (pure): an upload's defaults are validated as a job of its stack; a job of a code takes them under
its own fields; names and references are matched whole."""

from __future__ import annotations

import json

import pytest

from longshore.domain.codes import CodeRevision, build_code, job_from_code, parse_reference
from longshore.errors import InvalidJob
from test_spec import LIMITS, MANIFEST


def revision(**built) -> CodeRevision:
    return CodeRevision(name="report", revision=3, created_at=0.0, **built)


def test_an_upload_keeps_validated_defaults_and_its_gates():
    built = build_code(MANIFEST, LIMITS, "report", {"stack": "busybox", "command": ["sh", "-c", "cat $CONFIG_FILE"],
                                                    "env": {"MODE": "full"}, "memory": "32m", "priority": 1,
                                                    "config": {"db": "x"}, "max_concurrency": 2})
    assert built["stack"] == "busybox" and built["max_concurrency"] == 2
    assert json.loads(built["config"]) == {"db": "x"}
    assert built["defaults"]["memory"] == 32 << 20 and built["defaults"]["env"] == {"MODE": "full"}
    assert "timeout" not in built["defaults"]  # unset: the stack's default of the day


@pytest.mark.parametrize("name,fields,words", [
    ("re port", {"stack": "busybox"}, "code: a code's name is 1 to 100 letters"),
    ("report", {}, "stack: a code must name its stack"),
    ("report", {"stack": "cobol"}, "stack: unknown stack 'cobol'"),
    ("report", {"stack": "busybox", "memory": "1000g"}, "memory: 1000g is over stack busybox's maximum"),
    ("report", {"stack": "busybox", "payload": {}}, "payload: is not a field of a code"),
    ("report", {"stack": "busybox", "config": float("nan")}, "config: is not JSON"),
    ("report", {"stack": "busybox", "config": "x" * 70000}, "config: 70002 bytes as JSON, over the limit"),
    ("report", {"stack": "busybox", "max_concurrency": 0}, "max_concurrency: must be a whole number from 1"),
    ("report", {"stack": "busybox", "max_concurrency": True}, "max_concurrency: must be a whole number"),
])
def test_bad_uploads_are_refused_naming_the_field(name, fields, words):
    with pytest.raises(InvalidJob) as refused:
        build_code(MANIFEST, LIMITS, name, fields)
    assert words in str(refused.value)


def test_a_job_of_a_code_takes_its_defaults_under_its_own_fields():
    built = build_code(MANIFEST, LIMITS, "report", {"stack": "busybox", "command": ["true"], "env": {"A": "1", "B": "1"},
                                                    "priority": 1, "retries": 2})
    code = revision(stack=built["stack"], defaults=built["defaults"], config=None, max_concurrency=None)
    job = job_from_code(MANIFEST, LIMITS, code, {"env": {"B": "2"}, "priority": 2, "payload": {"n": 1}})
    assert (job.command, job.env, job.priority, job.retries) == (["true"], {"A": "1", "B": "2"}, 2, 2)
    with pytest.raises(InvalidJob, match="stack: code report runs on stack busybox, not 'alpha'"):
        job_from_code(MANIFEST, LIMITS, code, {"stack": "alpha"})


@pytest.mark.parametrize("reference,parsed", [("report", ("report", None)), ("report@12", ("report", 12))])
def test_references_name_a_code_and_maybe_a_revision(reference, parsed):
    assert parse_reference(reference) == parsed


@pytest.mark.parametrize("reference", ["report@0", "report@", "@3", "a@b@1", "report@-1", 5, None, "x\n"])
def test_bad_references_are_refused(reference):
    with pytest.raises(InvalidJob, match="code: "):
        parse_reference(reference)
