#!/usr/bin/env bash
# Build Longshore's image, longshore/longshore:VERSION (VERSION from pyproject.toml).
#
#   deploy/build-image.sh            from python:3.11-slim-bookworm, dependencies from PyPI (a user's machine)
#   deploy/build-image.sh --offline  from a Debian base made here (deploy/debian-base.sh), dependencies as
#                                    wheels downloaded first on this host (whose pip reaches the package
#                                    index: inside `docker build` it may not) into deploy/wheels
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE=${LONGSHORE_IMAGE:-longshore/longshore:$VERSION}
args=()
if [[ ${1:-} == --offline ]]; then
    deploy/debian-base.sh >/dev/null
    python3 -m pip download -q --disable-pip-version-check --only-binary :all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
        -d deploy/wheels -r deploy/requirements.lock "setuptools>=68" wheel
    args=(--build-arg BASE=longshore/debian-python:bookworm --build-arg "PIP_OPTIONS=--no-index")
fi
# BuildKit when the client has it; the classic builder otherwise (no buildx on some machines).
docker build -q "${args[@]}" -t "$IMAGE" . >/dev/null 2>&1 \
    || DOCKER_BUILDKIT=0 docker build -q "${args[@]}" -t "$IMAGE" . >/dev/null
echo "$IMAGE built ($(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
