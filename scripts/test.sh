#!/usr/bin/env bash
# The test command: bring up the real services, install Longshore into a fresh
# virtual environment of its own, and run the suite: the fast tier (tests/unit:
# pure logic and the import contracts, seconds, no services) first, then the
# integration tier (tests/integration) against Docker, RabbitMQ, PostgreSQL, two
# registries (one asking for credentials), Prometheus and Flower. With CI=true a
# missing service fails its tests instead of skipping them. Arguments go to
# pytest instead of the two tiers.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh docker rabbitmq postgres registry registry-auth prometheus runsc
workers/build.sh busybox
scripts/services.sh docker2   # a second engine (a second host), given the busybox image built above
VENV=${LONGSHORE_TEST_VENV:-/tmp/longshore-test-venv}
rm -rf "$VENV"
python3 -m venv "$VENV"
PIP_ROOT_USER_ACTION=ignore "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
export PATH="$VENV/bin:$PATH"
if [[ $# -eq 0 ]]; then set -- tests/unit tests/integration; fi
exec python -m pytest -q --durations=15 "$@"
