"""Images: make a job's image present on the engine, pulling it with its registry's credentials."""

from __future__ import annotations

import functools
import socket
import time
from typing import Callable

import docker
import docker.auth
import docker.errors
import docker.utils

from longshore.engine.calls import EngineCalls
from longshore.engine.registry import credentials_refusal, registry_answer
from longshore.errors import DockerFailure, FailureKind, TransientDockerFailure


class ImageCalls(EngineCalls):
    """Pulls."""

    def ensure_image(self, image: str, *, always_pull: bool, on_progress: Callable[[], None] | None = None) -> bool:
        """Make `image` present on the engine; return True if it was pulled. A long pull calls
        `on_progress` every few seconds, to show it is under way. The pull sends the credentials
        configured for the image's registry, if any."""
        if not always_pull and self._has_image(image):
            return False
        self._pull(image, on_progress)
        return True

    def image_was_gone(self, image: str, on_progress: Callable[[], None] | None = None) -> bool:
        """A create found no such image: if it is indeed gone (removed since a pull step saw it), pull it and
        say True; False if it is there (the create's 404 was about something else)."""
        self._seen_images.pop(image, None)
        if self._has_image(image):
            return False
        self._pull(image, on_progress)
        return True

    def _has_image(self, image: str) -> bool:
        """Whether the engine has `image`: asked at most once an IMAGE_SEEN_SECONDS once it was there."""
        seen = self._seen_images.get(image)
        if seen is not None and time.monotonic() - seen < IMAGE_SEEN_SECONDS:
            return True
        found = self._answer("pull", self._api.inspect_image, image)[0]
        if found:
            self._saw(image)
        return found

    def _saw(self, image: str) -> None:
        now = time.monotonic()
        if len(self._seen_images) >= SEEN_IMAGES_KEPT:  # many images over a process's life: forget the stale
            for stale in [name for name, seen in self._seen_images.items() if now - seen >= IMAGE_SEEN_SECONDS]:
                self._seen_images.pop(stale, None)
        self._seen_images[image] = now

    def _pull(self, image: str, on_progress: Callable[[], None] | None) -> None:
        repository, tag = _split_reference(image)
        registry = _check_registry_resolves(repository)
        try:
            self._call("pull", _pull, self._api, repository, tag, on_progress or (lambda: None),
                       self._registry_auths.auth_config(registry))
        except DockerFailure as failure:  # the registry refusing its credentials is said so, and permanent
            ask = functools.partial(self._call, "pull", registry_answer, self._api, image)
            raise credentials_refusal(registry, self._registry_auths, failure, ask) or failure
        self._saw(image)


#: An image the engine had is taken to be there this long without asking it again (that inspect was one
#: engine call per job, which `docker run` does not make either); a create that finds it gone since pulls
#: it again (`CreateCalls.create`).
IMAGE_SEEN_SECONDS = 60.0
#: Past this many images remembered, those not seen for IMAGE_SEEN_SECONDS are forgotten.
SEEN_IMAGES_KEPT = 256
#: How often a long pull reports that it is under way.
PULL_PROGRESS_SECONDS = 5.0


def _pull(api: docker.APIClient, repository: str, tag: str, on_progress: Callable[[], None],
          auth_config: dict[str, str] | None) -> None:
    # The engine answers 200 and then streams; a failure mid-stream arrives as a
    # structured `error` entry, which is retryable: the request itself was fine.
    reported = time.monotonic()
    for event in api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth_config):
        if "error" in event:
            raise TransientDockerFailure("pull", FailureKind.TRANSIENT,
                                         f"pull of {repository}:{tag} broke off: {event.get('error')}")
        if time.monotonic() - reported >= PULL_PROGRESS_SECONDS:
            reported = time.monotonic()
            on_progress()


def _split_reference(image: str) -> tuple[str, str]:
    """Split `repo[:tag]` into repository and tag (default `latest`); digests stay whole."""
    if "@" in image:
        repository, digest = image.split("@", 1)
        return repository, digest
    repository, tag = docker.utils.parse_repository_tag(image)
    return repository, tag or "latest"


def _check_registry_resolves(repository: str) -> str:
    """The repository's registry (host[:port]). An unknown one is permanent: the engine would report it as a
    retryable 500."""
    try:
        registry, _ = docker.auth.resolve_repository_name(repository)
    except docker.errors.InvalidRepository as exc:
        raise DockerFailure("pull", FailureKind.PERMANENT, f"malformed image name: {exc}") from exc
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    if registry == docker.auth.INDEX_NAME:
        host = "registry-1.docker.io"
    try:
        socket.getaddrinfo(host, None)
    except socket.gaierror as exc:
        raise DockerFailure("pull", FailureKind.PERMANENT, f"cannot pull {repository}: registry {registry} is "
                            "unknown (its name does not resolve)") from exc
    return registry
