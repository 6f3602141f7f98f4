"""Connecting to an engine as the docker CLI does: DOCKER_HOST, and TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import docker.tls

from longshore.settings import DOCKER_CERT_FILES


class _EngineClient(docker.APIClient):
    """docker-py's client, but a TLS engine is verified with DOCKER_CERT_PATH's ca.pem even when
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set: requests lets those override a session's own CA
    (docker/docker-py#2433), and the docker CLI never reads them."""

    def merge_environment_settings(self, url: Any, proxies: Any, stream: Any, verify: Any, cert: Any) -> Any:
        """requests' merge of a request's settings with the environment, with this session's CA first."""
        return super().merge_environment_settings(url, proxies, stream, self.verify if verify is None else verify,
                                                  cert)


def connect(docker_host: str | None, *, tls_certs: Path | None, **options: Any) -> docker.APIClient:
    """A client of the engine at `docker_host` (None: the local socket), its API version negotiated.

    With `tls_certs` (DOCKER_TLS_VERIFY set) a tcp:// host is spoken to over https, the engine verified
    against that directory's ca.pem and this client known by its cert.pem and key.pem. A socket (unix://,
    or none: the local one) has no TLS to speak."""
    tls: docker.tls.TLSConfig | bool = False
    if tls_certs is not None and docker_host:
        ca, cert, key = (str(tls_certs / name) for name in DOCKER_CERT_FILES)
        tls = docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)
    client = _EngineClient(base_url=docker_host, tls=tls, version="auto", **options)
    if not docker_host or docker_host.startswith("unix://"):
        client.trust_env = False  # no proxy or netrc applies to a socket: skip reading the environment per call
    return client
