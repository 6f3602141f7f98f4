"""Settings are parsed once; a bad value names its variable (pure logic: no services)."""

from __future__ import annotations

import pytest

from longshore.errors import ConfigError, InvalidJob
from longshore.settings import Settings
from longshore.stacks import parse_memory


@pytest.mark.parametrize("name,value,words", [
    ("LONGSHORE_BROKER_URL", "redis://x", "LONGSHORE_BROKER_URL: 'redis://x' is not a URL"),
    ("LONGSHORE_DATABASE_URL", "mysql://x", "LONGSHORE_DATABASE_URL"),
    ("DOCKER_HOST", "ftp://x", "DOCKER_HOST"),
    ("LONGSHORE_STACKS", "/nope/stacks.toml", "LONGSHORE_STACKS: the stack manifest /nope/stacks.toml does not exist"),
    ("LONGSHORE_OUTPUT_LIMIT_BYTES", "12", "below the minimum"),
])
def test_a_bad_value_names_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        Settings.from_env({name: value})


def test_no_broker_means_the_embedded_default():
    settings = Settings.from_env({})
    assert settings.embedded and settings.database_url.startswith("sqlite:///")


@pytest.mark.parametrize("text,size", [("128m", 128 << 20), ("1g", 1 << 30), ("65536k", 64 << 20), (8 << 20, 8 << 20)])
def test_memory_sizes_parse(text, size):
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["lots", "1m", "-5m"])
def test_bad_memory_sizes_are_refused(text):
    with pytest.raises(InvalidJob, match="memory"):
        parse_memory(text)
