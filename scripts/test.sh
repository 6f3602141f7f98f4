#!/usr/bin/env bash
# The test command: bring up the real services, install Longshore, run the suite.
# Tests run against Docker, RabbitMQ, PostgreSQL and a local registry; with
# CI=true a missing service fails its tests instead of skipping them.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh docker rabbitmq postgres registry prometheus
workers/build.sh busybox
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check -e '.[test]'
exec python3 -m pytest -q "$@"
