"""Metrics, Flower, rules and the dashboard, against a real Prometheus, a real Flower and real workers."""

from __future__ import annotations

import json
import re
import subprocess
import time
from urllib.parse import quote
from urllib.request import urlopen

import pytest

from support.helpers import free_port, sample_names, scrape, wait_until
from support.services import REPO

RULES = REPO / "monitoring" / "prometheus" / "rules.yml"
DASHBOARD = REPO / "monitoring" / "grafana" / "longshore.json"


@pytest.fixture
def client(distributed):
    import longshore

    return longshore


def wait_http(url: str, timeout: float = 30) -> None:
    def answers():
        try:
            return urlopen(url, timeout=2).status == 200
        except OSError:
            return False

    wait_until(answers, timeout=timeout, interval=0.2, what=url)


def run_mix(client, stack: str, succeed: int, fail: int) -> list:
    jobs = [client.submit(stack, ["true"]) for _ in range(succeed)]
    jobs += [client.submit(stack, ["sh", "-c", "exit 3"]) for _ in range(fail)]
    for job in jobs:
        job.wait(timeout=60)
    return jobs


def test_a_workers_metrics_count_its_jobs_and_steps(client, start_worker):
    # Given a worker serving metrics, after 3 jobs that succeed and 1 that fails
    port = free_port()
    worker = start_worker("alpha", args=["--metrics-port", str(port)])
    jobs = run_mix(client, "alpha", succeed=3, fail=1)
    # Then its endpoint counts them by stack and status, and times every step
    samples = wait_until(lambda: (s := scrape(port)).get(
        'longshore_step_duration_seconds_count{stack="alpha",step="reap"}') == 4 and s, what="4 reaps counted")
    for step in ("pull", "create", "start", "wait", "reap"):
        counted = samples[f'longshore_step_duration_seconds_count{{stack="alpha",step="{step}"}}']
        # Each step is timed at least once per job; on a loaded machine the watcher may send a slow step
        # again (a redrive), which is timed again and does nothing twice
        assert 4 <= counted <= 6, (step, counted)
    assert samples['longshore_job_queue_wait_seconds_count{stack="alpha"}'] == 4
    assert samples['longshore_job_duration_seconds_count{stack="alpha"}'] == 4
    assert samples[f'longshore_containers_running{{worker="{worker.name}"}}'] == 0
    assert samples[f'longshore_slots_free{{worker="{worker.name}"}}'] == 4
    assert samples['longshore_docker_errors_total{kind="transient",step="pull"}'] == 0
    assert samples['longshore_step_retries_total{step="pull"}'] == 0
    assert len(jobs) == 4


def test_the_exporter_reports_queue_depth_and_consumers(client, background):
    port = free_port()
    background(["longshore", "exporter", "--port", str(port)])
    wait_http(f"http://127.0.0.1:{port}/metrics")
    # Given two jobs for a stack no worker serves
    before = scrape(port)
    waiting = [client.submit("beta", ["true"]) for _ in range(2)]
    samples = scrape(port)
    assert samples['longshore_queue_messages{queue="stack.beta.v2",stack="beta"}'] == 2
    assert samples['longshore_queue_consumers{queue="stack.beta.v2",stack="beta"}'] == 0
    assert samples['longshore_jobs{stack="beta",status="queued"}'] >= 2
    submitted = 'longshore_jobs_submitted_total{stack="beta"}'
    assert samples[submitted] == before.get(submitted, 0) + 2
    # When they are cancelled, then the exporter counts them finished as cancelled (no worker saw them)
    cancelled = 'longshore_jobs_finished_total{stack="beta",status="cancelled"}'
    for job in waiting:
        job.cancel()
    assert scrape(port)[cancelled] == samples[cancelled] + 2


def test_the_exporter_counts_finished_jobs_by_status(client, start_worker, background):
    port = free_port()
    start_worker("alpha")
    background(["longshore", "exporter", "--port", str(port)])
    wait_http(f"http://127.0.0.1:{port}/metrics")
    before = scrape(port)
    run_mix(client, "alpha", succeed=3, fail=1)
    after = scrape(port)

    def grew(status):
        key = f'longshore_jobs_finished_total{{stack="alpha",status="{status}"}}'
        return after[key] - before.get(key, 0)

    assert (grew("succeeded"), grew("failed"), grew("timed_out"), grew("lost")) == (3, 1, 0, 0)


@pytest.mark.serial  # Prometheus scrapes every second with a 1 s timeout: a loaded machine misses them
def test_a_real_prometheus_reports_the_failure_rate_of_a_known_mix(client, start_worker, background, tmp_path):
    # Given Prometheus scraping a worker and the exporter every second, with Longshore's rules
    worker_port, exporter_port, prometheus_port = free_port(), free_port(), free_port()
    start_worker("alpha", args=["--metrics-port", str(worker_port)])
    background(["longshore", "exporter", "--port", str(exporter_port)])
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{RULES}"]
scrape_configs:
  - job_name: longshore-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
  - job_name: longshore-exporter
    static_configs: [{{targets: ["127.0.0.1:{exporter_port}"]}}]
""")
    background(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}"])
    api = f"http://127.0.0.1:{prometheus_port}/api/v1"
    wait_http(f"http://127.0.0.1:{prometheus_port}/-/ready")
    wait_until(lambda: _query(api, "up == 1") and len(_query(api, "up == 1")) == 2, what="both targets up")
    # A scrape of the counters before the first job (without one, rate() has nothing to start from); an
    # earlier test of this process may have counted jobs of alpha already: only the increase counts
    wait_until(lambda: _query(api, 'longshore_jobs_finished_total{stack="alpha",status="failed"} >= 0'),
               timeout=30, interval=0.5, what="a scrape of alpha's counters")
    # When 6 jobs succeed and 2 fail on stack alpha
    run_mix(client, "alpha", succeed=6, fail=2)

    # Then Prometheus's recorded failure rate for alpha is 2/8
    def failure_ratio():
        result = _query(api, 'longshore:job_failure_ratio:rate5m{stack="alpha"}')
        return result and float(result[0]["value"][1])

    wait_until(lambda: failure_ratio() == pytest.approx(0.25, abs=1e-6), timeout=30, interval=0.5,
               what="a failure ratio of 0.25")
    # And the queue depth series exists for every stack
    queues = {r["metric"]["queue"] for r in _query(api, "longshore_queue_messages")}
    assert {"stack.alpha.v2", "stack.beta.v2", "stack.busybox.v2", "longshore.control"} <= queues


def _query(api: str, promql: str) -> list:
    body = json.loads(urlopen(f"{api}/query?query={quote(promql)}", timeout=5).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_flower_turns_task_events_on_and_lists_every_step_of_a_job(client, start_worker, background):
    # Given Flower, and a worker started after it (task events are off until a monitor asks: Flower asks
    # every 5 s)
    port = free_port()
    background(["longshore", "flower", "--port", str(port)], env={"FLOWER_UNAUTHENTICATED_API": "true"})
    wait_http(f"http://127.0.0.1:{port}/healthcheck")
    start_worker("busybox")

    def steps_seen(job_id):
        tasks = json.loads(urlopen(f"http://127.0.0.1:{port}/api/tasks", timeout=5).read())
        return {t["name"] for t in tasks.values() if job_id in (t.get("args") or "")}

    every_step = {"longshore.pull_image", "longshore.create_container", "longshore.start_container",
                  "longshore.wait_container", "longshore.reap_container"}

    # When jobs run: Then within seconds Flower lists every lifecycle step of one of them
    def a_job_seen_whole():
        job = client.submit("busybox", ["echo", "seen by flower"])
        job.wait(timeout=60)
        for _ in range(6):  # Flower receives the events a moment after the job ended
            if steps_seen(job.id) >= every_step:
                return True
            time.sleep(0.5)
        return False

    assert wait_until(a_job_seen_whole, timeout=40, interval=0.1, what="Flower to list every step of a job")


def test_the_rules_pass_promtool_check_and_their_unit_tests():
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "rules_test.yml"], capture_output=True, text=True,
                            cwd=RULES.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture
def served_names(client, start_worker, background):
    """Every metric name the worker and the exporter serve, after one job."""
    worker_port, exporter_port = free_port(), free_port()
    start_worker("busybox", args=["--metrics-port", str(worker_port)])
    background(["longshore", "exporter", "--port", str(exporter_port)])
    wait_http(f"http://127.0.0.1:{exporter_port}/metrics")
    client.submit("busybox", ["true"]).wait(timeout=60)
    names = sample_names(scrape(worker_port)) | sample_names(scrape(exporter_port))
    return {n for n in names if n.startswith("longshore_")}


def _family(name: str) -> str:
    return re.sub(r"_(bucket|count|sum|created)$", "", name)


def test_the_readme_documents_exactly_the_metrics_served(served_names):
    readme = (REPO / "README.md").read_text()
    documented = set(re.findall(r"^\| `(longshore_[a-z_]+)` \|", readme, re.MULTILINE))
    assert documented == {_family(n) for n in served_names}


def test_every_dashboard_panel_queries_a_metric_that_exists(served_names):
    recorded = set(re.findall(r"record: (\S+)", RULES.read_text()))
    known = {_family(n) for n in served_names} | served_names | recorded
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            names = set(re.findall(r"(longshore[:_][a-z_:0-9]+)", target["expr"]))
            assert names and names <= known, (panel["title"], names - known)
