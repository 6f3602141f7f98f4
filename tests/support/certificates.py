"""Certificates for a TLS Docker engine, made on the spot with `cryptography`: a CA, and leaves it signs.

Laid out as Docker expects them: a client directory holds `ca.pem`, `cert.pem` and
`key.pem` (what DOCKER_CERT_PATH names).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey
#: Long enough for any test run, short enough that a leaked file is worthless soon.
VALID_FOR = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Authority:
    """A certificate authority that signs the leaves of one test engine."""

    name: str
    key: PrivateKey
    certificate: x509.Certificate

    @classmethod
    def new(cls, name: str) -> "Authority":
        """A fresh self-signed CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = _name(name)
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, certificate)

    def issue(self, common_name: str, *, server_ip: str | None = None) -> tuple[x509.Certificate, PrivateKey]:
        """A leaf for a server at `server_ip` (serverAuth), or else for a client (clientAuth)."""
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_ip else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(common_name), self.certificate.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server_ip:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def write_client_dir(self, directory: Path) -> Path:
        """A DOCKER_CERT_PATH directory: this CA, and a client certificate and key it signed."""
        certificate, key = self.issue(f"{self.name} client")
        write_pem(directory, ca=self.certificate, cert=certificate, key=key)
        return directory


def write_pem(directory: Path, **items: x509.Certificate | PrivateKey) -> None:
    """Write each certificate or key as `<name>.pem` in `directory` (keys readable by the owner only)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, item in items.items():
        path = directory / f"{name}.pem"
        if isinstance(item, x509.Certificate):
            path.write_bytes(item.public_bytes(serialization.Encoding.PEM))
        else:
            path.write_bytes(item.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
            path.chmod(0o600)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))  # a little clock skew is no failure
            .not_valid_after(now + VALID_FOR))
