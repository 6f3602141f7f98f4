#!/usr/bin/env bash
# Pin Longshore's dependencies for its image: install them into a throwaway venv and freeze it.
# Usage: scripts/lock-requirements.sh   (writes deploy/requirements.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(mktemp -d)
trap 'rm -rf "$VENV"' EXIT
python3 -m venv "$VENV"
PIP_ROOT_USER_ACTION=ignore "$VENV/bin/pip" install -q --disable-pip-version-check .
{
    echo "# Longshore's dependencies, pinned for its image (Python $(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')). Regenerate: scripts/lock-requirements.sh"
    "$VENV/bin/pip" freeze --exclude longshore
} >deploy/requirements.lock
