#!/usr/bin/env bash
# Build Debian bookworm base images with debootstrap, for machines that cannot pull from a registry:
#   longshore/debian-base:bookworm     minbase (what the offline RabbitMQ, PostgreSQL, Prometheus and
#                                      Alertmanager images of deploy/compose.offline.yml build from)
#   longshore/debian-python:bookworm   minbase + Python 3.11 with venv (what Longshore's image builds from
#                                      here; elsewhere it builds from python:3.11-slim-bookworm)
# Existing images are kept unless --force is given. Needs root and Debian's archive.
set -euo pipefail

FORCE=
[[ ${1:-} == --force ]] && FORCE=1
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

have() { [[ -z $FORCE ]] && docker image inspect "$1" >/dev/null 2>&1; }

build() {  # build IMAGE [PACKAGES]: debootstrap a root with PACKAGES and import it as IMAGE
    local image=$1 include=${2:-} root
    if have "$image"; then echo "$image exists"; return; fi
    command -v debootstrap >/dev/null || { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; }
    root=$(mktemp -d)
    trap 'rm -rf "$root"; trap - RETURN' RETURN
    debootstrap --variant=minbase ${include:+--include="$include"} bookworm "$root" "$MIRROR" >/dev/null
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . | docker import --change 'CMD ["/bin/bash"]' - "$image" >/dev/null
    echo "$image built"
}

build longshore/debian-base:bookworm
build longshore/debian-python:bookworm python3,python3-venv,ca-certificates
