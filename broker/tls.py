"""TLS for listeners: loading a certificate and key, and making a self-signed pair for
development nodes (``broker init --tls-self-signed``)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def generate_self_signed(cert_path: Path, key_path: Path, hostname: str,
                         days: int = 3650) -> None:
    """Write a self-signed certificate for ``hostname`` and its private key (mode 0600)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        alt = x509.DNSName(hostname)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
        .sign(key, hashes.SHA256())
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def server_context_factory(cert_path: Path, key_path: Path) -> Any:
    """A Twisted TLS context factory serving ``cert_path`` (chain) with ``key_path``."""
    from twisted.internet import ssl

    chain = cert_path.read_bytes()
    key = key_path.read_bytes()
    certificate = ssl.PrivateCertificate.loadPEM(key + b"\n" + chain.split(
        b"-----END CERTIFICATE-----")[0] + b"-----END CERTIFICATE-----\n")
    return certificate.options()
