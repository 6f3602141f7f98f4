"""The compose stack's files, read statically: what cannot run here (Grafana) and what must hold of them all."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def mounts(service: str) -> dict[str, str]:
    """Container path → host path of a service's bind mounts and volumes."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        source, target = volume.split(":")[:2]
        found[target] = source
    return found


def test_only_the_workers_get_the_docker_socket():
    holders = {name for name in SERVICES if "/var/run/docker.sock" in mounts(name)}
    assert holders == {"worker"}


def test_secrets_come_from_the_env_file_never_literals():
    text = (REPO / "docker-compose.yml").read_text()
    for name in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "FLOWER_PASSWORD", "GRAFANA_PASSWORD"):
        assert f"${{{name}:?" in text, name
    literal = re.search(r"(PASSWORD|PASS): +(?!\$\{)\S", text)
    assert literal is None, f"a literal secret: {literal and literal.group(0)}"
    example = (REPO / ".env.example").read_text()
    assert all(f"{name}=\n" in example for name in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD"))


def test_every_long_running_service_has_a_healthcheck_and_no_fixed_host_port():
    for name, service in SERVICES.items():
        if service.get("restart") == "no":
            continue
        assert "healthcheck" in service or name in ("beat",), name  # beat uses the image's own
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\$\{\w+_PORT:-\}:\d+", port), (name, port)


def test_grafana_is_provisioned_with_the_prometheus_datasource_and_the_dashboard():
    datasources = yaml.safe_load((REPO / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    [source] = datasources["datasources"]
    assert (source["type"], source["url"], source["isDefault"]) == ("prometheus", "http://prometheus:9090", True)
    providers = yaml.safe_load((REPO / "deploy/grafana/provisioning/dashboards/longshore.yml").read_text())
    [provider] = providers["providers"]
    assert mounts("grafana")[provider["options"]["path"]] == "./monitoring/grafana"
    assert mounts("grafana")["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    dashboard = json.loads((REPO / "monitoring/grafana/longshore.json").read_text())
    [variable] = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_prometheus_loads_the_repos_rules_and_scrapes_every_longshore_service():
    config = yaml.safe_load((REPO / "deploy/prometheus/prometheus.yml").read_text())
    [rules] = config["rule_files"]
    assert mounts("prometheus")[rules] == "./monitoring/prometheus/rules.yml"
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"longshore-worker", "longshore-exporter", "flower", "rabbitmq"}
    [alertmanager] = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanager == "alertmanager:9093"


def test_the_offline_override_builds_what_cannot_be_pulled_and_leaves_grafana_out():
    offline = yaml.safe_load((REPO / "deploy/compose.offline.yml").read_text())["services"]
    for name in ("postgres", "rabbitmq", "prometheus", "alertmanager"):
        assert (REPO / offline[name]["build"]["context"] / "Dockerfile").is_file(), name
    assert offline["grafana"]["profiles"] == ["grafana"]


def test_the_charts_rule_file_is_the_repos():
    assert (REPO / "charts/longshore/files/rules.yml").read_text() == (REPO / "monitoring/prometheus/rules.yml").read_text()


def test_the_api_parses_http_with_httptools_wherever_it_is_installed():
    # uvicorn picks its C parser when it is importable (h11, in Python, cost ~18 % more CPU per status read:
    # bench/api_reads.py): a dependency of the package, and pinned for the image
    import uvicorn
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    config = uvicorn.Config(lambda scope, receive, send: None, http="auto", log_config=None)
    config.load()
    assert config.http_protocol_class is HttpToolsProtocol
    lock = (REPO / "deploy" / "requirements.lock").read_text().splitlines()
    assert any(line.startswith("httptools==") for line in lock)
