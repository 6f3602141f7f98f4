"""Fixtures that bring the real services: Docker, RabbitMQ, PostgreSQL and the local registries.

`scripts/services.sh` starts them (scripts/test.sh runs it first). Each session
gets its own RabbitMQ vhost and PostgreSQL database, so runs never see each
other's queues or jobs. With CI=true a missing service fails the tests that need
it; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest
from cryptography.fernet import Fernet

from support.helpers import delete_from_registry

REPO = Path(__file__).resolve().parents[2]
TEST_STACKS = REPO / "tests" / "support" / "stacks.toml"
RUN_ID = uuid.uuid4().hex[:8]
VHOST = f"longshore-test-{RUN_ID}"
DATABASE = f"longshore_test_{RUN_ID}"
ADMIN_DATABASE_URL = "postgresql://longshore:longshore@127.0.0.1:5432/longshore"
DATABASE_URL = f"postgresql://longshore:longshore@127.0.0.1:5432/{DATABASE}"
BROKER_URL = f"amqp://guest:guest@127.0.0.1:5672/{VHOST}"
REGISTRY = "127.0.0.1:5000"
#: A second local registry, which asks for credentials: these (scripts/services.sh registry-auth).
REGISTRY_AUTH = "127.0.0.1:5001"
REGISTRY_AUTH_CREDENTIALS = {"username": "longshore", "password": "registry-test-password"}
#: A second Docker engine on this machine, standing for a second host (scripts/services.sh docker2).
DOCKER2_HOST = "unix:///var/run/longshore-docker2.sock"
IMAGE = "longshore/busybox:1"
LABEL_JOB = "io.longshore.job"
LABEL_INSTALLATION = "io.longshore.installation"
IN_CI = os.environ.get("CI", "").lower() == "true"

#: The test process itself is a distributed client: the integration tier's conftest sets
#: these before longshore reads its settings.
HOME = Path(tempfile.mkdtemp(prefix="longshore-test-home-"))
DISTRIBUTED_ENV = {
    "LONGSHORE_BROKER_URL": BROKER_URL,
    "LONGSHORE_DATABASE_URL": DATABASE_URL,
    "LONGSHORE_STACKS": str(TEST_STACKS),
    "LONGSHORE_HOME": str(HOME),
    # Short clocks so fault tests finish in seconds.
    "LONGSHORE_HEARTBEAT_SECONDS": "0.5",
    "LONGSHORE_WORKER_LOST_SECONDS": "3",
    "LONGSHORE_REAP_GRACE_SECONDS": "1",
    # A key of this session's own, to seal secret variables with, and one to sign webhooks with.
    "LONGSHORE_SECRET_KEYS": Fernet.generate_key().decode(),
    "LONGSHORE_WEBHOOK_SECRET": f"webhook-secret-of-{RUN_ID}",
    # The tests' webhook receivers listen on 127.0.0.1, which webhooks may not reach by default.
    "LONGSHORE_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
}


@pytest.fixture(scope="session", autouse=True)
def _remove_test_home():
    """The session's LONGSHORE_HOME is the tests' own: nothing of it stays."""
    yield
    shutil.rmtree(HOME, ignore_errors=True)


def missing(service: str, why: str) -> None:
    """A service the test needs is not there: fail in CI, skip elsewhere."""
    message = f"{service} is not available ({why}); run scripts/services.sh"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def docker_engine():
    """A live Docker engine with the busybox stack image built."""
    import docker

    try:
        client = docker.from_env()
        client.ping()
    except Exception as exc:  # any failure to reach the engine means it is missing
        missing("Docker engine", repr(exc))
    if not client.images.list(name=IMAGE):
        built = _run(str(REPO / "workers" / "build.sh"), "busybox")
        assert built.returncode == 0, built.stderr
    follow_starts(client)
    yield client
    # After the suite, nothing the tests made may be left behind.
    leftover = _wait_for_no_containers(client, timeout=20)
    assert not leftover, f"containers leaked by the tests: {leftover}"
    folders = _wait_for_no_contract_folders(timeout=20)
    assert not folders, f"contract folders leaked by the tests: {folders}"


def _wait_for_no_contract_folders(*, timeout: float) -> list[str]:
    """The session's workers make each job's contract folder under LONGSHORE_HOME/contracts/ENGINE: each
    goes with its container."""
    deadline = time.monotonic() + timeout
    while True:
        leftover = [str(folder) for engine in (HOME / "contracts").glob("*") for folder in engine.iterdir()
                    if not folder.name.startswith(".shared")]
        if not leftover or time.monotonic() > deadline:
            return leftover
        time.sleep(0.2)


def this_sessions_containers() -> dict[str, list[str]]:
    """The container filter for this session's jobs only: sessions running side by side (pytest-xdist)
    share the engines, each with an installation (job store) of its own."""
    from longshore.settings import get_settings

    return {"label": [LABEL_JOB, f"{LABEL_INSTALLATION}={get_settings().installation}"]}


def _wait_for_no_containers(client, *, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        leftover = [c["Names"][0] for c in client.api.containers(all=True, filters=this_sessions_containers())]
        if not leftover or time.monotonic() > deadline:
            return leftover
        time.sleep(0.2)


@pytest.fixture(scope="session")
def second_engine(docker_engine):
    """A second Docker engine (its own socket, data root, containerd namespace and id) with the stack image."""
    import docker

    try:
        client = docker.DockerClient(base_url=DOCKER2_HOST, version="auto", timeout=30)
        client.ping()
        client.images.get(IMAGE)
    except Exception as exc:  # any failure to reach it means it is missing
        missing("second Docker engine", repr(exc))
    follow_starts(client)
    yield client
    leftover = _wait_for_no_containers(client, timeout=20)
    assert not leftover, f"containers leaked on the second engine: {leftover}"


@pytest.fixture(scope="session")
def rabbitmq():
    """A vhost of its own on the real RabbitMQ, deleted after the session."""
    if shutil.which("rabbitmqctl") is None:
        missing("RabbitMQ", "rabbitmqctl not installed")
    added = _run("rabbitmqctl", "add_vhost", VHOST)
    if added.returncode != 0:
        missing("RabbitMQ", added.stderr.strip() or added.stdout.strip())
    _run("rabbitmqctl", "set_permissions", "-p", VHOST, "guest", ".*", ".*", ".*")
    yield BROKER_URL
    _run("rabbitmqctl", "delete_vhost", VHOST)


@pytest.fixture(scope="session")
def postgres():
    """A database of its own on the real PostgreSQL, upgraded, dropped after the session."""
    import psycopg2

    try:
        admin = psycopg2.connect(ADMIN_DATABASE_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        missing("PostgreSQL", str(exc).strip())
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    admin.close()  # the fault suite restarts PostgreSQL: connect afresh to clean up
    upgraded = _run("longshore", "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    yield DATABASE_URL
    from longshore.service.runtime import get_runtime

    get_runtime().store.engine.dispose()
    get_runtime.cache_clear()
    admin = psycopg2.connect(ADMIN_DATABASE_URL, connect_timeout=5)
    admin.autocommit = True
    for tries_left in reversed(range(10)):
        try:
            with admin.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
            break
        except psycopg2.errors.InsufficientPrivilege:
            # An autovacuum worker on it is the server's own: FORCE may not end it; it ends soon by itself.
            if not tries_left:
                raise
            time.sleep(1)
    admin.close()


@pytest.fixture
def migrated_database(postgres):
    """A PostgreSQL database of its own, upgraded to this code's schema, for a test that alters its tables or
    rights; dropped afterwards."""
    name = f"longshore_scratch_{uuid.uuid4().hex[:8]}"
    _as_admin(f'CREATE DATABASE "{name}"')
    url = f"postgresql://longshore:longshore@127.0.0.1:5432/{name}"
    upgraded = subprocess.run(["longshore", "db", "upgrade"], env={**os.environ, "LONGSHORE_DATABASE_URL": url},
                              capture_output=True, text=True, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    yield url
    _as_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _as_admin(statement: str) -> None:
    """One statement on the server's admin database, on a connection of its own (a test may restart the server)."""
    import psycopg2

    admin = psycopg2.connect(ADMIN_DATABASE_URL, connect_timeout=5)
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(statement)
    admin.close()


@pytest.fixture(scope="session")
def registry():
    """The local image registry on 127.0.0.1:5000."""
    try:
        urlopen(f"http://{REGISTRY}/v2/", timeout=3).read()
    except OSError as exc:
        missing("image registry", str(exc))
    return REGISTRY


@pytest.fixture(scope="session")
def registry_auth():
    """The local image registry on 127.0.0.1:5001 that asks for credentials (REGISTRY_AUTH_CREDENTIALS)."""
    try:
        urlopen(f"http://{REGISTRY_AUTH}/v2/", timeout=3).read()
    except HTTPError as exc:
        if exc.code == 401:
            return REGISTRY_AUTH
        missing("image registry asking for credentials", f"{REGISTRY_AUTH}/v2/ answered {exc.code}, not 401")
    except OSError as exc:
        missing("image registry asking for credentials", str(exc))
    missing("image registry asking for credentials", f"{REGISTRY_AUTH}/v2/ answered without asking for any")


@contextmanager
def _only_in_registry(client, remote: str, credentials: dict[str, str] | None = None):
    """The busybox stack image pushed as `remote` and removed from the engine; after, gone from both."""
    client.images.get(IMAGE).tag(remote)
    pushed = list(client.api.push(remote, stream=True, decode=True, auth_config=credentials))
    assert not [event for event in pushed if "error" in event], pushed
    client.images.remove(remote)
    try:
        yield remote
    finally:
        try:
            client.images.remove(remote, force=True)
        except Exception:  # already gone: nothing to clean
            pass
        delete_from_registry(remote, credentials)


@pytest.fixture
def registry_only_image(registry, docker_engine):
    """The busybox stack image pushed to the local registry and removed from the engine."""
    with _only_in_registry(docker_engine, f"{registry}/longshore/busybox-pushed:{uuid.uuid4().hex[:8]}") as remote:
        yield remote


@pytest.fixture
def private_image(registry_auth, docker_engine):
    """The busybox stack image pushed to the registry that asks for credentials, and removed from the engine."""
    with _only_in_registry(docker_engine, f"{registry_auth}/longshore/busybox-private:{uuid.uuid4().hex[:8]}",
                           REGISTRY_AUTH_CREDENTIALS) as remote:
        yield remote


@pytest.fixture(scope="session")
def distributed(docker_engine, rabbitmq, postgres):
    """RabbitMQ + PostgreSQL + Docker, ready for workers and clients."""
    return DISTRIBUTED_ENV


@pytest.fixture
def wait_reaped(docker_engine):
    """Wait until the given jobs' containers are gone; return the names still there."""

    def wait(job_ids, timeout: float = 15) -> list[str]:
        wanted = set(job_ids)
        deadline = time.monotonic() + timeout
        while True:
            left = [c["Names"][0] for c in docker_engine.api.containers(all=True, filters=this_sessions_containers())
                    if c["Labels"].get(LABEL_JOB) in wanted]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    return wait


@pytest.fixture
def embedded_env(tmp_path):
    """The environment of a first try: no broker, no database configured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGSHORE_")}
    env["LONGSHORE_HOME"] = str(tmp_path / "home")
    env["LONGSHORE_STACKS"] = str(TEST_STACKS)
    return env


class StartCounter(threading.Thread):
    """Counts an engine's container starts per job, following its event stream live from the session's
    start. Asking the engine afterwards is not enough: it keeps only its last ~1000 events, which sessions
    running side by side use up in minutes. Follows the engine again (from the last event seen) after an
    engine restart."""

    def __init__(self, client):
        super().__init__(daemon=True)
        self.client, self.since = client, int(time.time())
        self.seen: set[tuple[str, int]] = set()
        self.counts: Counter = Counter()
        self.following = threading.Event()

    def run(self) -> None:
        while True:
            try:
                stream = self.client.api.events(since=self.since, decode=True, filters={
                    "type": "container", "event": "start", "label": LABEL_JOB})
                self.following.set()
                for event in stream:
                    key = (event.get("id", ""), event.get("timeNano", 0))
                    if key not in self.seen:
                        self.seen.add(key)
                        self.counts[(event.get("Actor") or {}).get("Attributes", {}).get(LABEL_JOB)] += 1
                    self.since = max(self.since, int(event.get("time", self.since)))
            except Exception:  # the engine restarted (the fault suite): follow it again
                time.sleep(1)

    def count(self, job_id: str) -> int:
        time.sleep(0.5)  # a start event reaches the stream a moment after the engine sent it
        return self.counts[job_id]


_counters: dict[int, StartCounter] = {}  # by client: two unix sockets share one base_url


@pytest.fixture(scope="session")
def starts(docker_engine):
    """starts(client, job_id): how many containers of the job that engine started during the session."""

    def count(client, job_id: str) -> int:
        return _counters[id(client)].count(job_id)

    return count


def follow_starts(client) -> None:
    """Start counting this engine's container starts (once per engine and session)."""
    if id(client) not in _counters:
        counter = _counters[id(client)] = StartCounter(client)
        counter.start()
        counter.following.wait(10)
