#!/usr/bin/env bash
# Write .env for docker-compose.yml with random secrets (from .env.example), unless it exists.
# Usage: deploy/compose-env.sh [ENV_FILE]   (default: .env beside docker-compose.yml)
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-.env}
if [[ -e $target ]]; then echo "$target exists: kept"; exit 0; fi
secret() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
umask 077
while IFS= read -r line; do
    case $line in
        *_PASSWORD=) echo "${line}$(secret)" ;;
        *) echo "$line" ;;
    esac
done <.env.example >"$target"
echo "$target written (random secrets; keep it private)"
