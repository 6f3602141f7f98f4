"""Settings are parsed once; a bad value names its variable (pure logic: no services)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from longshore.domain.stacks import parse_memory
from longshore.errors import ConfigError, InvalidJob
from longshore.settings import Settings, settings_table, variables

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name,value,words", [
    ("LONGSHORE_BROKER_URL", "redis://x", "LONGSHORE_BROKER_URL: 'redis://x' is not a URL"),
    ("LONGSHORE_DATABASE_URL", "mysql://x", "LONGSHORE_DATABASE_URL"),
    ("DOCKER_HOST", "ftp://x", "DOCKER_HOST"),
    ("LONGSHORE_STACKS", "/nope/stacks.toml", "LONGSHORE_STACKS: the stack manifest /nope/stacks.toml does not exist"),
    ("LONGSHORE_OUTPUT_LIMIT_BYTES", "12", "below the minimum"),
    ("LONGSHORE_HEARTBEAT_SECONDS", "nan", "LONGSHORE_HEARTBEAT_SECONDS: 'nan' is not a finite number"),
    ("LONGSHORE_OUTPUT_LIMIT_BYTES", "inf", "LONGSHORE_OUTPUT_LIMIT_BYTES: 'inf' is not a finite number"),
    ("LONGSHORE_STEP_BACKOFF_MAX_SECONDS", "600", "above the maximum of 60"),
    ("LONGSHORE_WORKER_LOST_SECONDS", "1", "LONGSHORE_WORKER_LOST_SECONDS: 1 is shorter than 3 heartbeats"),
    ("LONGSHORE_DATABASE_PREPARE", "sometimes", "LONGSHORE_DATABASE_PREPARE: 'sometimes' is neither on"),
])
def test_a_bad_value_names_the_variable(name, value, words):
    with pytest.raises(ConfigError, match=words.replace("(", r"\(")):
        Settings.from_env({name: value})


@pytest.mark.parametrize("text,on", [(None, True), ("", True), ("ON", True), ("1", True), ("off", False),
                                     (" No ", False), ("0", False), ("false", False)])
def test_a_switch_reads_the_usual_words_and_empty_is_its_default(text, on):
    assert Settings.from_env({} if text is None else {"LONGSHORE_DATABASE_PREPARE": text}).database_prepare is on


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


def test_every_tunable_has_one_variable_and_a_line_of_documentation():
    names = [var.name for var, _group in variables()]
    assert len(names) == len(set(names))
    assert all(var.doc and var.name.isupper() for var, _group in variables())


def test_the_readme_settings_table_is_the_one_the_settings_declare():
    # Given the README, when its settings table is compared with the declarations, then they are equal
    readme = (REPO / "README.md").read_text()
    table = re.search(r"<!-- settings-table -->\n(.*?)\n<!-- /settings-table -->", readme, re.DOTALL)
    assert table, "README.md lacks the <!-- settings-table --> block"
    assert table.group(1) == settings_table(), "regenerate it with `longshore settings`"


def test_every_default_parses_and_the_policies_follow_the_settings():
    settings = Settings.from_env({"LONGSHORE_STEP_RETRIES": "4", "LONGSHORE_MAX_REDELIVERIES": "1",
                                  "LONGSHORE_HEARTBEAT_SECONDS": "2"})
    policies = settings.policies
    assert policies.step("pull").max_retries == 4 and policies.step("reap").backoff_max_seconds == 60
    assert policies.redeliveries_exhausted(2) and not policies.redeliveries_exhausted(1)
    assert policies.engine_outage_margin_seconds == 5
    assert settings.job_limits.max_retries == 10


def test_a_default_timeout_over_the_maximum_is_refused():
    with pytest.raises(ConfigError, match="LONGSHORE_DEFAULT_TIMEOUT_SECONDS: must not exceed"):
        Settings.from_env({"LONGSHORE_DEFAULT_TIMEOUT_SECONDS": "100", "LONGSHORE_MAX_TIMEOUT_SECONDS": "10"})


# -- registry credentials (LONGSHORE_REGISTRY_AUTH_FILE) -------------------------

PASSWORD = "pa55-never-shown"


def auth_file(tmp_path, content) -> dict[str, str]:
    path = tmp_path / "registries.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return {"LONGSHORE_REGISTRY_AUTH_FILE": str(path)}


def test_registry_credentials_are_read_in_both_of_dockers_forms_and_their_repr_hides_the_password(tmp_path):
    # Given a config with explicit fields for one registry and docker's `auth` for another (keyed by URL)
    encoded = base64.b64encode(f"robot:{PASSWORD}".encode()).decode()
    env = auth_file(tmp_path, {"auths": {"127.0.0.1:5001": {"username": "me", "password": PASSWORD},
                                         "https://registry.example:443/v2/": {"auth": encoded}}})
    # When the settings are read
    auths = Settings.from_env(env).worker.registry_auths
    # Then each registry has its credentials, and nothing shows the password
    assert auths.auth_config("127.0.0.1:5001") == {"username": "me", "password": PASSWORD,
                                                   "serveraddress": "127.0.0.1:5001"}
    assert auths.get("registry.example:443").username == "robot"
    assert auths.get("127.0.0.1:5000") is None and auths.source == "LONGSHORE_REGISTRY_AUTH_FILE"
    assert PASSWORD not in repr(auths) and PASSWORD not in repr(Settings.from_env(env))


def test_no_registry_credentials_by_default():
    assert Settings.from_env({}).worker.registry_auths.credentials == ()


@pytest.mark.parametrize("content,words", [
    ("{not json", "is not JSON (line 1, column 2"),
    ({"registries": {}}, 'has no "auths" object'),
    ({"auths": {"127.0.0.1:5001": "me:" + PASSWORD}}, "the entry for registry '127.0.0.1:5001' is not an object"),
    ({"auths": {"127.0.0.1:5001": {"username": "me"}}}, "the entry for registry '127.0.0.1:5001' has neither"),
    ({"auths": {"127.0.0.1:5001": {"password": PASSWORD}}}, "the entry for registry '127.0.0.1:5001' has neither"),
    ({"auths": {"127.0.0.1:5001": {"auth": PASSWORD}}}, '"auth" is not the base64 of username:password'),
    ({"auths": {"127.0.0.1:5001": {"auth": base64.b64encode(PASSWORD.encode()).decode()}}},
     '"auth" is not the base64 of username:password'),
    ('{"auths": {"x": {"password": "' + PASSWORD + '", }}}', "is not JSON"),
])
def test_a_bad_registry_auth_file_stops_the_start_naming_the_variable_and_the_entry_never_the_password(
        tmp_path, content, words):
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(auth_file(tmp_path, content))
    assert str(refused.value).startswith("LONGSHORE_REGISTRY_AUTH_FILE: ") and words in str(refused.value)
    assert PASSWORD not in str(refused.value)


def test_an_unreadable_registry_auth_file_stops_the_start(tmp_path):
    with pytest.raises(ConfigError, match="LONGSHORE_REGISTRY_AUTH_FILE: cannot read .*No such file"):
        Settings.from_env({"LONGSHORE_REGISTRY_AUTH_FILE": str(tmp_path / "missing.json")})
