"""Property-based tests of the one validator: whatever a sender puts in a submission, the answer is a
valid job or an InvalidJob naming the field and the rule; never another exception (pure: no services)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longshore.domain.records import NewJob
from longshore.domain.spec import ENV_NAME, FIELD_RULES, JobLimits, build_job
from longshore.domain.stacks import Ceiling, Resources, StackManifest
from longshore.errors import InvalidJob

CEILING = Ceiling(resources=Resources(memory_bytes=4 << 30, cpus=8, disk_bytes=1 << 30, timeout_seconds=600))
MANIFEST = StackManifest.load(Path(__file__).resolve().parents[1] / "support" / "stacks.toml", CEILING)
LIMITS = JobLimits(default_stack="busybox", payload_limit_bytes=4096, default_timeout_seconds=60, max_retries=10,
                   max_retry_delay_seconds=900)
FIELDS = sorted(FIELD_RULES) + ["payload"]

# Anything a JSON message, a Python caller or a careless sender could put in a field.
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40) | st.binary(max_size=8)
anything = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=10), inner, max_size=4) | st.tuples(inner), max_leaves=12)
submissions = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=12), anything, max_size=6)

PROPERTY_SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(submissions)
def test_any_submission_is_a_job_or_an_invalid_job_naming_a_field(fields):
    try:
        job = build_job(MANIFEST, LIMITS, **fields)
    except InvalidJob as refused:
        words = str(refused)
        assert words and "\n" not in words and len(words) < 2000
        named = re.match(r"'.*?'(?=:)|\".*?\"(?=:)|[^.:\[]*", words).group(0)  # a repr may use either quote
        assert named in (*FIELDS, *fields, *(repr(str(key)[:64]) for key in fields)), words  # it names the field
        return
    assert isinstance(job, NewJob)
    if fields.get("payload_text") is not None:
        assert job.payload == fields["payload_text"]  # IronWorker's payload: a string, written verbatim
    else:
        json.loads(job.payload)  # what reaches PAYLOAD_FILE is JSON (no NaN)


env_names = st.from_regex(ENV_NAME, fullmatch=True).filter(
    lambda name: name not in {"TASK_ID", "PAYLOAD_FILE", "TASK_DIR", "RESULT_FILE", "HOME", "CONFIG_FILE"})
text = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=30)


@PROPERTY_SETTINGS
@given(command=st.lists(text, min_size=1, max_size=5), env=st.dictionaries(env_names, text, max_size=4),
       payload=st.dictionaries(text, st.integers() | text, max_size=4), timeout=st.floats(0.5, 600),
       memory=st.integers(6 << 20, 4 << 30), cpus=st.floats(0.01, 8), retries=st.integers(0, 10))
def test_a_valid_submission_is_kept_as_given(command, env, payload, timeout, memory, cpus, retries):
    job = build_job(MANIFEST, LIMITS, stack="busybox", command=command, env=env, payload=payload, timeout=timeout,
                    memory=memory, cpus=cpus, retries=retries)
    assert (job.command, job.env, json.loads(job.payload)) == (command, env, payload)
    assert (job.timeout_seconds, job.memory_bytes, job.cpus, job.retries) == (timeout, memory, cpus, retries)


@PROPERTY_SETTINGS
@given(name=env_names, junk=st.sampled_from(["\n", "\r", " ", "=", "-", "\x00", "é", "."]))
def test_a_variable_name_is_matched_whole(name, junk):
    for bad in (name + junk, junk + name):
        try:
            build_job(MANIFEST, LIMITS, command=["true"], env={bad: "x"})
        except InvalidJob as refused:
            assert str(refused).startswith("env")
        else:
            raise AssertionError(f"{bad!r} was accepted as a variable name")


@PROPERTY_SETTINGS
@given(secret=text.map(lambda value: f"«{value}»"))  # marked, so it cannot occur in our own words by chance
def test_no_refusal_ever_shows_a_secret_value(secret):
    for secret_env in ({"1BAD": secret}, {"OK": secret + "\x00"}, {"OK": secret * 6000}, {"TASK_ID": secret}):
        try:
            build_job(MANIFEST, LIMITS, command=["true"], secret_env=secret_env)
        except InvalidJob as refused:
            assert secret not in str(refused)
