"""Private registries at the pull: telling a registry that refused its credentials from one that is down.

The engine (Docker 20.10) answers both kinds of failed pull with a 500; only its words differ,
and words decide nothing here. Its distribution inspect (`GET /distribution/NAME/json`) says
it with a status code instead: 401 when the registry refused the credentials sent. Sent none,
it answers a registry that serves no anonymous request with a 500 again, so such a registry is
asked once more with a made-up credential: refused, it wants credentials. These questions are
asked only after a pull failed, and any answer but a refusal leaves the pull's failure as it was
(a registry that is down stays a transient failure, retried).
"""

from __future__ import annotations

from typing import Callable

import docker
import docker.errors

from longshore.domain.registries import RegistryAuths
from longshore.engine import classify
from longshore.errors import DockerFailure, FailureKind

#: Sent only to a registry that served no anonymous request, to learn whether it wants credentials.
MADE_UP_CREDENTIAL = {"username": "longshore-probe", "password": "not-a-credential"}

#: Asks the engine for the image's manifest with these credentials (or none); returns its refusal, or None.
Ask = Callable[[dict[str, str] | None], docker.errors.APIError | None]


def credentials_refusal(registry: str, auths: RegistryAuths, failure: DockerFailure,
                        ask: Ask) -> DockerFailure | None:
    """The permanent failure to report if the failed pull was `registry` refusing its credentials, else None."""
    if failure.kind not in (FailureKind.TRANSIENT, FailureKind.PERMANENT):
        return None  # 404: the image is not there, and the pull's own words say so
    credential = auths.get(registry)
    try:
        if credential is not None:
            refused = classify.refuses_credentials(ask(credential.auth_config()))
        else:
            anonymous = ask(None)
            refused = classify.refuses_credentials(anonymous) or (
                anonymous is not None and classify.classify(anonymous) is FailureKind.TRANSIENT
                and classify.refuses_credentials(ask(MADE_UP_CREDENTIAL)))
    except DockerFailure:
        return None  # the engine itself did not answer: the pull's failure stands
    if not refused:
        return None
    if credential is not None:
        return DockerFailure("pull", FailureKind.PERMANENT,
                             f"registry {registry} refused the credentials configured for it in {auths.source}")
    return DockerFailure("pull", FailureKind.PERMANENT,
                         f"registry {registry} requires credentials; none are configured for it in {auths.source}")


def registry_answer(api: docker.APIClient, image: str,
                    auth_config: dict[str, str] | None) -> docker.errors.APIError | None:
    """The engine's answer when asked for `image`'s manifest: None if found, else its refusal (any status code
    is an answer here; only an engine that cannot be reached raises)."""
    try:
        api.inspect_distribution(image, auth_config=auth_config)
    except docker.errors.APIError as answer:
        return answer
    return None
