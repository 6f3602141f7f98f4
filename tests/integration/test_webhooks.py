"""Signed webhooks from a durable outbox: a receiver on 127.0.0.1 that checks every signature is down for 30 s
and the active scheduler is killed meanwhile; every status change still arrives, in order per job."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from support.helpers import free_port, longshore_cli as cli, wait_until
from support.services import DISTRIBUTED_ENV

SECRET = DISTRIBUTED_ENV["LONGSHORE_WEBHOOK_SECRET"]
FAST_RETRIES = {"LONGSHORE_WEBHOOK_MAX_BACKOFF_SECONDS": "2"}


class Receiver(BaseHTTPRequestHandler):
    """Accepts a change only when its signature is right and its timestamp recent."""

    received: list[dict] = []
    refused: list[str] = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        fields = dict(part.split("=", 1) for part in self.headers.get("X-Longshore-Signature", "").split(","))
        expected = hmac.new(SECRET.encode(), f"{fields.get('t')}.".encode() + body, hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(fields.get("t", 0))) < 300
        if not (fresh and hmac.compare_digest(expected, fields.get("v1", ""))):
            self.refused.append(self.headers.get("X-Longshore-Delivery"))
            self.send_response(401)
        else:
            self.received.append({"delivery": int(self.headers["X-Longshore-Delivery"]), **json.loads(body)})
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):  # quiet
        pass


def active(process) -> bool:
    return "is the active scheduler" in process.log_path.read_text()


@pytest.mark.timeout(180)
def test_every_change_arrives_signed_and_in_order_despite_a_receiver_down_and_a_scheduler_killed(
        client, start_worker, background):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks/longshore"
    first = background(["longshore", "scheduler"], env=FAST_RETRIES)
    wait_until(lambda: active(first), timeout=20, what="the scheduler to take the lease")
    start_worker("busybox", env=FAST_RETRIES)
    # Given three jobs naming a webhook whose receiver is down: one succeeds, one fails, one is cancelled
    down_since = time.monotonic()
    jobs = {"succeeded": client.submit("busybox", ["true"], webhook=url),
            "failed": client.submit("busybox", ["sh", "-c", "exit 3"], webhook=url),
            "cancelled": client.submit("busybox", ["sleep", "60"], webhook=url)}
    wait_until(lambda: jobs["cancelled"].status.value == "running", timeout=20, what="the sleeper to run")
    jobs["cancelled"].cancel()
    for handle in jobs.values():
        handle.wait(timeout=30)
    # When deliveries have failed a few times and the active scheduler is killed mid-way
    wait_until(lambda: all(d.tries >= 2 for h in jobs.values() for d in h.webhook_deliveries()[:1]),
               timeout=30, what="failed tries to be recorded")
    os.killpg(first.pid, signal.SIGKILL)
    first.wait(10)
    background(["longshore", "scheduler"], env=FAST_RETRIES)
    # And the receiver comes back after 30 s
    time.sleep(max(0.0, 30 - (time.monotonic() - down_since)))
    Receiver.received, Receiver.refused = [], []
    server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Then every change of every job arrives, signed, in order per job
        wanted = {handle.id: ["queued", "running", final] for final, handle in jobs.items()}

        def arrived():
            seen = defaultdict(list)
            for change in sorted({c["delivery"]: c for c in Receiver.received}.values(), key=lambda c: c["delivery"]):
                seen[change["job_id"]].append(change["status"])
            return dict(seen) == wanted

        wait_until(arrived, timeout=60, what="every change to arrive")
        by_job = defaultdict(list)
        for change in Receiver.received:  # in the order they arrived (a delivery may come twice: at least once)
            if not by_job[change["job_id"]] or by_job[change["job_id"]][-1] != change["delivery"]:
                by_job[change["job_id"]].append(change["delivery"])
        assert all(ids == sorted(ids) for ids in by_job.values()), by_job
        assert Receiver.refused == []
        failed = next(c for c in Receiver.received if c["status"] == "failed")
        assert (failed["exit_code"], failed["previous_status"]) == (3, "running")
    finally:
        server.shutdown()
    # And the deliveries, with their tries, are visible
    deliveries = jobs["failed"].webhook_deliveries()
    assert [d.state for d in deliveries] == ["delivered"] * 3 and deliveries[0].tries >= 3
    shown = cli("status", jobs["failed"].id)
    assert "webhook" in shown.stdout and "delivered after" in shown.stdout


def test_a_bad_webhook_is_refused_at_submit(client):
    from longshore.errors import InvalidJob

    for bad in ("ftp://example.com/x", "http://", "http://a b", "x" * 3000, "http://[::1", "http://h:port/"):
        with pytest.raises(InvalidJob, match="webhook: must be an http:// or https:// URL"):
            client.submit("busybox", ["true"], webhook=bad)
    refused = cli("run", "--stack", "busybox", "--webhook", "not a url", "--", "true")
    assert refused.returncode == 125 and "webhook:" in refused.stderr and "Traceback" not in refused.stderr
