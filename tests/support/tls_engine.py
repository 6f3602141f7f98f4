"""A Docker engine of the tests' own, reachable only over TLS on 127.0.0.1, standing for a remote engine.

It is a third dockerd next to the local one and docker2 (scripts/services.sh), with
its own data root, exec root, pid file, containerd namespaces, key and bridge, so it
shares nothing with them, and the busybox stack image loaded from the local engine.
Its certificates are made at start: a CA, a server certificate for 127.0.0.1, a
client directory as DOCKER_CERT_PATH names it, and one signed by an unrelated CA.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.certificates import Authority, write_pem
from support.services import IMAGE, LABEL_JOB, RUN_ID, missing

#: A bridge of its own: with `--bridge none` dockerd deletes docker0, the local engine's.
BRIDGE = "longshore-br3"
START_SECONDS = 30
STOP_SECONDS = 15


@dataclass(frozen=True)
class TlsEngine:
    """Where the engine listens and the certificate directories a client may use."""

    host: str  #: tcp://127.0.0.1:PORT, TLS only
    client_certs: Path  #: ca.pem, cert.pem, key.pem that the engine trusts
    wrong_ca_certs: Path  #: the same three files from an unrelated CA

    def env(self, base: dict[str, str], **overrides: str | None) -> dict[str, str]:
        """`base` pointed at this engine with verified TLS; an override of None unsets the variable."""
        env = {**base, "DOCKER_HOST": self.host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(self.client_certs)}
        for name, value in overrides.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    def docker(self, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
        """The docker CLI against this engine, reading the same three variables Longshore reads."""
        return subprocess.run(["docker", *args], env=self.env(dict(os.environ)), input=stdin, capture_output=True,
                              timeout=60)


@pytest.fixture(scope="session")
def tls_engine(docker_engine):
    """A TLS-only dockerd on a free port of 127.0.0.1 with the stack image; stopped and removed after."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("dockerd", "docker", "ip")):
        missing("TLS Docker engine", "it needs root, dockerd, the docker CLI and ip to start a dockerd of its own")
    root = Path(tempfile.mkdtemp(prefix=f"longshore-tls-{RUN_ID}-"))
    certs = _make_certificates(root)
    made_bridge = _ensure_bridge()
    port = _free_port()
    process = _start_dockerd(root, port)
    try:
        engine = TlsEngine(host=f"tcp://127.0.0.1:{port}", client_certs=certs, wrong_ca_certs=root / "wrong-ca")
        _wait_until_it_answers(engine, process, root / "dockerd.log")
        loaded = engine.docker("load", stdin=b"".join(docker_engine.api.get_image(IMAGE)))  # by name: tagged
        assert loaded.returncode == 0, loaded.stderr
        yield engine
        leftover = engine.docker("ps", "--all", "--quiet", "--filter", f"label={LABEL_JOB}").stdout.decode()
        assert not leftover, f"containers leaked on the TLS engine: {leftover.split()}"
    finally:
        _stop(process)
        if made_bridge:
            subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _make_certificates(root: Path) -> Path:
    """The engine's CA and server certificate in root/server; returns the client directory."""
    authority = Authority.new("longshore test engine CA")
    server_cert, server_key = authority.issue("longshore test engine", server_ip="127.0.0.1")
    write_pem(root / "server", ca=authority.certificate, cert=server_cert, key=server_key)
    Authority.new("an unrelated CA").write_client_dir(root / "wrong-ca")
    return authority.write_client_dir(root / "client")


def _ensure_bridge() -> bool:
    """Create the engine's bridge if it is not there; True when this session made it."""
    if subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0:
        return False
    added = subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], capture_output=True, text=True)
    if added.returncode != 0:
        missing("TLS Docker engine", f"cannot create the bridge {BRIDGE}: {added.stderr.strip()}")
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_dockerd(root: Path, port: int) -> subprocess.Popen:
    # A key of its own: the engine's id (which a worker's identity is tied to) comes from it.
    config = root / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(root / "key.json")}))
    server = root / "server"
    namespace = f"longshore-tls-{RUN_ID}"
    command = [
        "dockerd", "--host", f"tcp://127.0.0.1:{port}",
        "--tlsverify", "--tlscacert", str(server / "ca.pem"), "--tlscert", str(server / "cert.pem"),
        "--tlskey", str(server / "key.pem"),
        "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile", str(root / "dockerd.pid"),
        "--containerd-namespace", namespace, "--containerd-plugins-namespace", f"{namespace}-plugins",
        "--config-file", str(config), "--bridge", BRIDGE, "--iptables=false", "--ip-masq=false",
    ]
    with open(root / "dockerd.log", "wb") as log:
        return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_until_it_answers(engine: TlsEngine, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while (answer := engine.docker("version")).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:]
            missing("TLS Docker engine", f"dockerd did not answer over TLS ({answer.stderr.decode().strip()}); "
                                         f"its log ends:\n{tail}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM the engine (it stops its containerd and unmounts), SIGKILL if it lingers; wait for it."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # its own session: dockerd and the containerd it started
        process.wait(STOP_SECONDS)
