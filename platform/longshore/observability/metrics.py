"""A worker's Prometheus metrics, named by Prometheus conventions, with bounded labels (never a job id).

`PrometheusEvents` plugs into the service's lifecycle hooks, so no step counts
anything itself. A prefork worker's children each keep their own numbers, so a
worker started with a metrics port runs in prometheus-client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR, set by `longshore worker` before this module is
imported) and serves the sum. Gauges that describe the worker as a whole
(containers running, slots free) are read at scrape time from the Docker engine,
which is right whatever the pool.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from longshore.domain.records import Finished, Job
from longshore.domain.steps import TIMED_STEPS, Step
from longshore.service.ports import LifecycleEvents

#: Buckets for step and job durations: container steps take tens of ms to minutes.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600)
#: The failure kinds counted as Docker errors (a 404 is counted as permanent, as docker-py's class says).
ERROR_KINDS = ("transient", "permanent", "conflict")
REMOVAL_REASONS = ("job_ended", "stale_attempt", "unknown_job")

JOB_QUEUE_WAIT = Histogram(
    "longshore_job_queue_wait_seconds", "Time from submit to the container's start, by stack.",
    ["stack"], buckets=DURATION_BUCKETS)
JOB_DURATION = Histogram(
    "longshore_job_duration_seconds", "Time from the container's start to the job's end, by stack.",
    ["stack"], buckets=DURATION_BUCKETS)
STEP_DURATION = Histogram(
    "longshore_step_duration_seconds", "Duration of each lifecycle step (pull, create, start, wait, reap), by stack.",
    ["stack", "step"], buckets=DURATION_BUCKETS)
DOCKER_ERRORS = Counter(
    "longshore_docker_errors_total", "Failed Docker engine calls, by step and kind (transient, permanent, conflict).",
    ["step", "kind"])
STEP_RETRIES = Counter(
    "longshore_step_retries_total", "Platform retries of lifecycle steps, by step.", ["step"])
REAPER_REMOVED = Counter(
    "longshore_reaper_removed_total", "Containers the janitor removed, by reason.", ["reason"])

STEP_LABELS = tuple(step.value for step in TIMED_STEPS)


class PrometheusEvents(LifecycleEvents):
    """The lifecycle's hooks, counted and timed."""

    def job_started(self, job: Job) -> None:
        JOB_QUEUE_WAIT.labels(job.stack).observe(max(time.time() - job.created_at, 0))

    def job_finished(self, finished: Finished) -> None:
        # How many jobs finished is counted by the exporter, from the store (cancels included).
        if finished.run_seconds is not None:
            JOB_DURATION.labels(finished.stack).observe(finished.run_seconds)

    def step_done(self, stack: str, step: Step, seconds: float) -> None:
        STEP_DURATION.labels(stack, step.value).observe(seconds)

    def step_retried(self, step: Step) -> None:
        STEP_RETRIES.labels(step.value).inc()

    def container_removed(self, reason: str) -> None:
        REAPER_REMOVED.labels(reason).inc()

    def docker_call(self, call: str, outcome: str, seconds: float) -> None:
        kind = "permanent" if outcome == "not_found" else outcome
        if kind in ERROR_KINDS:
            DOCKER_ERRORS.labels(call if call in STEP_LABELS else "other", kind).inc()


def prime(stacks: Iterable[str]) -> None:
    """Create every series at zero, so rates see a job's first increment."""
    for stack in stacks:
        JOB_QUEUE_WAIT.labels(stack)
        JOB_DURATION.labels(stack)
        for step in STEP_LABELS:
            STEP_DURATION.labels(stack, step)
    for reason in REMOVAL_REASONS:
        REAPER_REMOVED.labels(reason)
    for step in STEP_LABELS:
        STEP_RETRIES.labels(step)
        for kind in ERROR_KINDS:
            DOCKER_ERRORS.labels(step, kind)


class WorkerCollector(Collector):
    """Containers running and slots free for this worker, as its attempts in the store say at scrape time."""

    def __init__(self, nodename: str, slots: int, running: Callable[[], int], holding: Callable[[], int]):
        self.nodename, self.slots, self.running, self.holding = nodename, slots, running, holding

    def collect(self):
        running = GaugeMetricFamily("longshore_containers_running", "Job containers running now, per worker.",
                                    labels=["worker"])
        free = GaugeMetricFamily("longshore_slots_free", "Slots free for more containers, per worker.",
                                 labels=["worker"])
        try:
            running.add_metric([self.nodename], self.running())
            free.add_metric([self.nodename], max(self.slots - self.holding(), 0))
        except Exception:  # the store is away: report nothing rather than a wrong zero
            return
        yield running
        yield free


def serve_worker_metrics(port: int, addr: str, *, nodename: str, slots: int, running: Callable[[], int],
                         holding: Callable[[], int]) -> None:
    """Serve this worker's metrics on `addr:port` (all processes of it, in multiprocess mode)."""
    from prometheus_client import REGISTRY, multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    registry.register(WorkerCollector(nodename, slots, running, holding))
    start_http_server(port, addr=addr, registry=registry)
