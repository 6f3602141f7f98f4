"""The integration tier: every test here runs against real services (see `support.services`).

The test process is a distributed client of its own RabbitMQ vhost and PostgreSQL
database: the environment is set here, before any test reads Longshore's settings.
"""

from __future__ import annotations

import os

import pytest

from support.helpers import wait_until
from support.services import DISTRIBUTED_ENV, this_sessions_containers

os.environ.update(DISTRIBUTED_ENV)

from support.services import (  # noqa: E402,F401  (fixtures)
    _remove_test_home, distributed, docker_engine, embedded_env, migrated_database, postgres, private_image, rabbitmq,
    registry, registry_auth, registry_only_image, second_engine, starts, wait_reaped,
)
from support.workers import background, start_worker  # noqa: E402,F401  (fixtures)
from support.api import api  # noqa: E402,F401  (a fixture)
from support.tls_engine import tls_engine  # noqa: E402,F401  (a fixture)


@pytest.fixture
def client(distributed, docker_engine):
    """The Python API on the distributed test installation; after the test, every job's container has been
    reaped (off the jobs' critical path) before its workers stop. Modules may define their own."""
    import longshore

    yield longshore
    wait_until(lambda: not docker_engine.api.containers(all=True, filters=this_sessions_containers()),
               timeout=30, what="every job's container to be reaped")
