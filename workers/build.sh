#!/usr/bin/env bash
# Build Longshore's stack images locally; no registry is reachable here, so
# nothing is pulled: busybox comes from Debian's busybox-static, python from
# debootstrap. Existing images are kept unless --force is given.
#
# Usage: workers/build.sh [--force] [busybox] [python]   (no names = busybox)
#   busybox -> longshore/busybox:1    python -> longshore/python:3
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
FORCE=
names=()
for a in "$@"; do
    case $a in
        --force) FORCE=1 ;;
        busybox | python) names+=("$a") ;;
        *) echo "usage: $0 [--force] [busybox] [python]" >&2; exit 2 ;;
    esac
done
[[ ${#names[@]} -gt 0 ]] || names=(busybox)

# the engine may not be running yet on a fresh machine
docker info >/dev/null 2>&1 || "$HERE/../scripts/services.sh" docker >/dev/null

have_image() { [[ -z $FORCE ]] && docker image inspect "$1" >/dev/null 2>&1; }

# docker build; if BuildKit fails (the newer client on PATH may have a broken
# or missing buildx), retry with the legacy builder, then Debian's own client
docker_build() {
    docker build -q "$@" >/dev/null 2>&1 \
        || DOCKER_BUILDKIT=0 docker build -q "$@" >/dev/null \
        || DOCKER_BUILDKIT=0 /usr/bin/docker build -q "$@" >/dev/null
}

build_busybox() {
    local image=longshore/busybox:1 ctx
    if have_image $image; then echo "$image exists (use --force to rebuild)"; return; fi
    # Debian's plain busybox package is dynamically linked: useless in scratch
    if ! dpkg-query -W -f '${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive NEEDRESTART_SUSPEND=1 apt-get install -y -qq busybox-static >/dev/null
    fi
    ctx=$(mktemp -d)
    trap 'rm -rf "$ctx"; trap - RETURN' RETURN   # once, when this function returns
    cp "$HERE/busybox/Dockerfile" /bin/busybox "$ctx/"
    docker_build -t $image "$ctx"
    # smoke test: the shell, an applet and the nobody user work offline
    docker run --rm --network none $image sh -c 'echo ok; id nobody'
    echo "$image built"
}

build_python() {
    local image=longshore/python:3
    if have_image $image; then echo "$image exists (use --force to rebuild)"; return; fi
    "$HERE/python/build.sh" $image
    docker run --rm --network none $image python3 -c 'import json, sys; print("ok", sys.version.split()[0])'
    echo "$image built"
}

for n in "${names[@]}"; do "build_$n"; done
