#!/usr/bin/env bash
# A first try on a fresh machine: install Docker and Longshore, build the small
# busybox stack, and run one job on the embedded default (no broker, SQLite).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/services.sh docker >/dev/null
workers/build.sh busybox >/dev/null
PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check -e .
exec longshore run --stack busybox --payload '{"name": "world"}' -- \
    sh -c 'echo "hello from job $TASK_ID"; echo "payload: $(cat "$PAYLOAD_FILE")"'
