"""Throwaway TLS certificates for the test servers, made with trustme: a private CA, a server
certificate for 127.0.0.1 and localhost, and a client certificate (for servers that require
one), written as PEM files into a directory of the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")  # the test servers bind 127.0.0.1 only
CLIENT_NAME = "trading-supervisor"


@dataclass(frozen=True)
class Certificates:
    """A server certificate and key, the CA file a client must trust to accept them, and a
    client certificate and key signed by the same CA."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    client_cert_file: Path
    client_key_file: Path


def make_certificates(directory: Path, name: str = "server") -> Certificates:
    """A new CA and certificates signed by it, as `<name>-ca.pem`, `<name>-cert.pem`,
    `<name>-key.pem`, `<name>-client-cert.pem` and `<name>-client-key.pem` in `directory`.
    Each call makes a different CA, so the CA of one call is a "wrong CA" for another."""
    ca = trustme.CA()
    files = Certificates(
        ca_file=directory / f"{name}-ca.pem",
        cert_file=directory / f"{name}-cert.pem",
        key_file=directory / f"{name}-key.pem",
        client_cert_file=directory / f"{name}-client-cert.pem",
        client_key_file=directory / f"{name}-client-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    _write(ca.issue_cert(*SERVER_NAMES), files.cert_file, files.key_file)
    _write(ca.issue_cert(CLIENT_NAME), files.client_cert_file, files.client_key_file)
    return files


def _write(issued: trustme.LeafCert, cert_file: Path, key_file: Path) -> None:
    issued.cert_chain_pems[0].write_to_path(str(cert_file))
    issued.private_key_pem.write_to_path(str(key_file))
    key_file.chmod(0o600)
