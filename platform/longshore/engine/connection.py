"""Connecting to an engine as the docker CLI does: DOCKER_HOST, and TLS from DOCKER_TLS_VERIFY / DOCKER_CERT_PATH."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import docker
import docker.tls
import requests

from longshore.engine.socket_http import SocketHttp, as_response
from longshore.settings import DOCKER_CERT_FILES


#: The only arguments of a request the socket's shortcut takes (docker-py's non-streaming calls); any other
#: (a stream, files, a JSON body, auth) goes through requests as docker-py sends it.
_SHORTCUT_ARGUMENTS = frozenset({"params", "data", "headers", "timeout", "allow_redirects"})


class _EngineClient(docker.APIClient):
    """docker-py's client, but a TLS engine is verified with DOCKER_CERT_PATH's ca.pem even when
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE is set: requests lets those override a session's own CA
    (docker/docker-py#2433), and the docker CLI never reads them.

    On a local socket, a call that neither streams nor sends more than a body goes straight to one pool of
    connections to the socket (`engine.socket_http`: httptools parses the answers), not through requests'
    session, urllib3 and http.client: their merging, preparing, cookie handling and header parsing cost
    several times the call's own work (an inspect: 0.64–0.86 ms of CPU through requests, 0.38 through urllib3,
    0.16–0.20 now: `bench/engine_calls.py`), for nothing a socket needs. docker-py still builds the URL, reads
    the answer and raises its typed errors from the status code; a failure to connect or read is the same
    requests error as before.
    docker-py's adapter also keys its pools by the whole URL, so each new container's call opened a new
    connection; this pool is one per engine."""

    _socket_pool: Any = None  #: set by `connect` on a unix:// engine

    def request(self, method: str, url: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """requests' `Session.request`, straight to the socket when it can be (see the class docstring)."""
        given = {key for key, value in kwargs.items() if value is not None and not (key == "stream" and not value)}
        if self._socket_pool is None or not given <= _SHORTCUT_ARGUMENTS or not kwargs.get("allow_redirects", True) \
                or not isinstance(kwargs.get("data"), (bytes, str, type(None))):  # a file or a generator: streamed
            return super().request(method, url, **kwargs)
        return self._through_socket(method, url, kwargs.get("params"), kwargs.get("data"),
                                    kwargs.get("headers"), kwargs.get("timeout"))

    def _through_socket(self, method: str, url: str, params: Any, data: Any, headers: Any,
                        timeout: Any) -> requests.Response:
        path = url[len(self.base_url):] if url.startswith(self.base_url) else url
        if params:
            query = urlencode(_query_pairs(params), doseq=True)
            if query:
                path += ("&" if "?" in path else "?") + query
        body = data.encode("utf-8") if isinstance(data, str) else data
        merged = {key: value for key, value in {**self.headers, **(headers or {})}.items() if value is not None}
        answer = self._socket_pool.request(method, path, body=body, headers=merged, timeout=timeout)
        return as_response(*answer, url=self.base_url + path)

    def close(self) -> None:
        """requests' session closed, and the socket's idle connections with it."""
        super().close()
        if self._socket_pool is not None:
            self._socket_pool.close()

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
        # one pool of connections to the socket, not docker-py's adapter's pools (keyed by the whole URL, so
        # each new container's calls opened a new connection)
        adapter = client.get_adapter(client.base_url)
        client._socket_pool = SocketHttp(adapter.socket_path, max_idle=adapter.max_pool_size)
    return client


def _query_pairs(params: Any) -> list[tuple[Any, Any]]:
    """A request's parameters as requests encodes them: a list value repeats its key; None is left out."""
    items = params.items() if hasattr(params, "items") else params
    return [(key, value) for key, values in items
            for value in (values if isinstance(values, (list, tuple)) else [values]) if value is not None]
