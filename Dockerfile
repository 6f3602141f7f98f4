# Longshore's image: one image for every Longshore process (worker, HTTP API, exporter, Flower, beat,
# migrations, the CLI). Builds from an official Python base by default; machines that cannot pull
# build it from a Debian base of their own (deploy/debian-base.sh) with
#   --build-arg BASE=longshore/debian-python:bookworm --build-arg PIP_OPTIONS="--no-index"
# after putting the wheels of deploy/requirements.lock in deploy/wheels (deploy/build-image.sh does
# both). No credential, CA or wheel of the build is left in the final image.
ARG BASE=python:3.11-slim-bookworm

FROM ${BASE} AS build
ARG PIP_OPTIONS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/longshore
COPY deploy/requirements.lock /build/requirements.lock
COPY deploy/wheels/ /build/wheels/
RUN /opt/longshore/bin/pip install ${PIP_OPTIONS} --find-links /build/wheels --no-deps -r /build/requirements.lock
COPY pyproject.toml README.md /build/src/
COPY platform /build/src/platform
RUN /opt/longshore/bin/pip install ${PIP_OPTIONS} --find-links /build/wheels --no-deps /build/src \
    && /opt/longshore/bin/pip uninstall -y -q pip setuptools \
    && find /opt/longshore -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE}
LABEL org.opencontainers.image.title="longshore" \
      org.opencontainers.image.description="Run other people's code as jobs in Docker containers, over Celery" \
      org.opencontainers.image.source="https://github.com/longshore/longshore"
COPY --from=build /opt/longshore /opt/longshore
COPY workers/stacks.toml /etc/longshore/stacks.toml
# A user of its own for every process that does not need the Docker socket (workers run as root:
# the socket is root on the host anyway; see the README's "Security").
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/longshore --create-home longshore
ENV PATH=/opt/longshore/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LONGSHORE_STACKS=/etc/longshore/stacks.toml \
    LONGSHORE_HOME=/var/lib/longshore
USER longshore
WORKDIR /var/lib/longshore
HEALTHCHECK --interval=30s --timeout=10s --start-period=20s --retries=3 CMD ["longshore", "health"]
CMD ["longshore", "--help"]
