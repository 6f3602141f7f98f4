#!/usr/bin/env bash
# Build a Debian bookworm + python3 image from Debian's archive with
# debootstrap, since no base image can be pulled here. Called by
# workers/build.sh. Usage: workers/python/build.sh [IMAGE]  (default longshore/python:3)
set -euo pipefail

image=${1:-longshore/python:3}
mirror=http://deb.debian.org/debian

if ! command -v debootstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq debootstrap >/dev/null
fi

root=$(mktemp -d /tmp/longshore-python-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
# minbase: only essential packages + apt. python3, not python3-minimal: the
# latter lacks most of the standard library (no json, no asyncio)
debootstrap --variant=minbase --include=python3 bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; exit 1; }
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*   # not needed at run time
tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -c 'CMD ["python3"]' - "$image" >/dev/null
rm -f "$root.log"
