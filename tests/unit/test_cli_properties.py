"""Property-based tests of `longshore run`'s input: whatever text is given to its options, the command either
hands the real validator a submission it accepts, or exits 2 (usage) or 125 (invalid job) with one message
naming the problem; never a traceback. The runtime is replaced by the validator alone (pure: no services)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longshore.cli import cli
from longshore.domain.spec import build_job
from test_spec_properties import LIMITS, MANIFEST

OPTIONS = ["--stack", "--image", "--env", "--secret-env", "--payload", "--timeout", "--memory", "--cpus", "--disk",
           "--retries", "--retry-delay"]
# What a shell can pass: any text without NUL (argv cannot hold one), often shaped like the option's values.
values = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=24) | \
    st.sampled_from(["1", "-1", "0", "nan", "inf", "1e309", "64m", "1000g", "9" * 30 + "g", "A=B", "=", "HOME=x",
                     "{}", "[1]", "NaN", "busybox", "longshore/busybox:1", "@/nonexistent"])
arguments = st.lists(st.tuples(st.sampled_from(OPTIONS), values), max_size=4)


class Accepted(Exception):
    """The validator took the submission: the CLI would have queued it."""


@pytest.fixture(autouse=True)
def validator_only(monkeypatch):
    def submit(**fields):
        build_job(MANIFEST, LIMITS, **{key: value for key, value in fields.items() if value is not None})
        raise Accepted

    monkeypatch.setattr("longshore.client.submit", submit)
    monkeypatch.setattr("longshore.service.runtime.get_runtime",
                        lambda: SimpleNamespace(settings=SimpleNamespace(embedded=False)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arguments)
def test_any_options_are_accepted_or_refused_with_one_clear_message(pairs):
    argv = ["run", *[part for pair in pairs for part in pair], "--", "true"]
    result = CliRunner().invoke(cli, argv)
    if isinstance(result.exception, Accepted):
        return
    assert isinstance(result.exception, SystemExit), (argv, result.exception)
    assert result.exit_code in (2, 125), (argv, result.exit_code, result.output)
    assert "Traceback" not in result.output and result.output.strip(), argv
    assert result.output.startswith(("longshore: ", "Usage: ")), (argv, result.output)
