"""One process that exports what no single worker can see: queues, the store, the workers.

Queue depth and consumers come from the broker (a passive queue declare per
queue, so nothing is created); jobs submitted, jobs by status, jobs overdue and
workers up come from the store. Run it once per installation: `longshore exporter`.
"""

from __future__ import annotations

import logging
import time

from kombu import Connection
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from longshore.broker.routing import CONTROL_QUEUE, stack_queue
from longshore.service.runtime import Runtime
from longshore.domain.status import JobStatus
from longshore.store import STORE_ERRORS
from longshore.store.counts import SUBMITTED

log = logging.getLogger(__name__)

#: A running job this long past its timeout is overdue (its kill should have happened).
OVERDUE_MARGIN_SECONDS = 60


class InstallationCollector(Collector):
    """Reads the broker and the store at each scrape."""

    def __init__(self, runtime: Runtime):
        self.runtime = runtime

    def collect(self):
        yield from self._queues()
        yield from self._store()

    def _queues(self):
        messages = GaugeMetricFamily("longshore_queue_messages",
                                     "Messages waiting in a queue (stack queues and control).",
                                     labels=["queue", "stack"])
        consumers = GaugeMetricFamily("longshore_queue_consumers", "Consumers of a queue: workers serving that stack.",
                                      labels=["queue", "stack"])
        wanted = [(stack_queue(name), name) for name in self.runtime.manifest.names()] + [(CONTROL_QUEUE, "")]
        try:
            with Connection(self.runtime.settings.broker_url, connect_timeout=3) as connection:
                for queue, stack in wanted:
                    try:
                        _, depth, count = connection.default_channel.queue_declare(queue, passive=True)
                    except connection.channel_errors:  # not declared yet: nothing has been sent there
                        connection.close()
                        depth, count = 0, 0
                    messages.add_metric([queue, stack], depth)
                    consumers.add_metric([queue, stack], count)
        except Exception:  # the broker is away: export nothing rather than zeros that look healthy
            log.warning("cannot read queue depths from the broker", exc_info=True)
            return
        yield messages
        yield consumers

    def _store(self):
        finished = CounterMetricFamily("longshore_jobs_finished",
                                       "Jobs that reached a final status, by stack and status.",
                                       labels=["stack", "status"])
        submitted = CounterMetricFamily("longshore_jobs_submitted", "Jobs accepted into the store, by stack.",
                                        labels=["stack"])
        by_status = GaugeMetricFamily("longshore_jobs", "Jobs in the store now, by stack and status.",
                                      labels=["stack", "status"])
        overdue = GaugeMetricFamily("longshore_jobs_overdue",
                                    "Jobs still running a minute past their timeout, by stack.", labels=["stack"])
        worker_up = GaugeMetricFamily("longshore_worker_up", "1 if the worker heart-beat recently, else 0.",
                                      labels=["worker"])
        try:
            counts = self.runtime.store.reads.installation_counts(overdue_margin_seconds=OVERDUE_MARGIN_SECONDS)
        except STORE_ERRORS:
            log.warning("cannot read the store", exc_info=True)
            return
        stacks = sorted(set(self.runtime.manifest.names()) | {stack for stack, _ in counts.totals})
        for stack in stacks:
            submitted.add_metric([stack], counts.totals.get((stack, SUBMITTED), 0))
            overdue.add_metric([stack], counts.overdue_by_stack.get(stack, 0))
            for status in JobStatus:
                by_status.add_metric([stack, status.value], counts.current.get((stack, status.value), 0))
                if status.final:
                    finished.add_metric([stack, status.value], counts.totals.get((stack, status.value), 0))
        now, lost_seconds = time.time(), self.runtime.settings.worker.lost_seconds
        for name, last_seen in counts.last_seen_by_worker.items():
            worker_up.add_metric([name], 1 if now - last_seen <= lost_seconds else 0)
        yield from (finished, submitted, by_status, overdue, worker_up)


def serve(runtime: Runtime, port: int, addr: str = "127.0.0.1") -> None:
    """Serve the installation's metrics on `addr:port` until interrupted."""
    registry = CollectorRegistry()
    registry.register(InstallationCollector(runtime))
    start_http_server(port, addr=addr, registry=registry)
    log.info("exporter serving on %s:%s", addr, port)
    while True:
        time.sleep(3600)
