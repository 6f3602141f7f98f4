#!/usr/bin/env bash
# The test command: bring up the real services, install Longshore into a fresh
# virtual environment of its own, and run the suite: the fast tier (tests/unit:
# pure logic and the import contracts, seconds, no services) first, then the
# integration tier (tests/integration) against Docker, RabbitMQ, PostgreSQL, two
# registries (one asking for credentials), Prometheus and Flower. With CI=true a
# missing service fails its tests instead of skipping them. The suite runs in
# LONGSHORE_TEST_PROCESSES (3) pytest sessions side by side, then the tests marked
# `serial` alone. Arguments go to one pytest run instead.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh docker rabbitmq postgres registry registry-auth prometheus runsc
workers/build.sh busybox python
scripts/services.sh docker2   # a second engine (a second host), given the busybox image built above
VENV=${LONGSHORE_TEST_VENV:-/tmp/longshore-test-venv}
rm -rf "$VENV"
python3 -m venv "$VENV"
PIP_ROOT_USER_ACTION=ignore "$VENV/bin/pip" install -q --disable-pip-version-check -e '.[test]'
export PATH="$VENV/bin:$PATH"
if [[ $# -gt 0 ]]; then exec python -m pytest -q --durations=15 "$@"; fi

# Sessions side by side (pytest-xdist), each with its own vhost, database and installation label;
# then, alone, the tests that restart or reconfigure a shared service.
status=0
python -m pytest -q --durations=15 -n "${LONGSHORE_TEST_PROCESSES:-3}" -m "not serial" tests/unit tests/integration \
    || status=$?
python -m pytest -q --durations=5 -m serial tests/integration || status=$?
# Whatever installation made it, no job container may outlive the suite on either engine.
for host in "" "unix:///var/run/longshore-docker2.sock"; do
    for _ in $(seq 30); do
        left=$(docker ${host:+-H "$host"} ps --all --quiet --filter label=io.longshore.job)
        [[ -z "$left" ]] && break
        sleep 1
    done
    if [[ -n "$left" ]]; then
        echo "containers leaked on ${host:-the default engine}: $left" >&2
        status=1
    fi
done
exit $status
