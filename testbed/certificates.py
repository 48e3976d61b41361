"""Throwaway TLS certificates for the test servers, made with trustme: a private CA and a server
certificate for 127.0.0.1 and localhost, written as PEM files into a directory of the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES = ("127.0.0.1", "localhost")  # the test servers bind 127.0.0.1 only


@dataclass(frozen=True)
class Certificates:
    """A server certificate and key, and the CA file a client must trust to accept them."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(directory: Path, name: str = "server") -> Certificates:
    """A new CA and a server certificate signed by it, as `<name>-ca.pem`, `<name>-cert.pem`
    and `<name>-key.pem` in `directory`. Each call makes a different CA, so the CA of one
    call is a "wrong CA" for the certificate of another."""
    ca = trustme.CA()
    server = ca.issue_cert(*SERVER_NAMES)
    files = Certificates(
        ca_file=directory / f"{name}-ca.pem",
        cert_file=directory / f"{name}-cert.pem",
        key_file=directory / f"{name}-key.pem",
    )
    ca.cert_pem.write_to_path(str(files.ca_file))
    server.cert_chain_pems[0].write_to_path(str(files.cert_file))
    server.private_key_pem.write_to_path(str(files.key_file))
    files.key_file.chmod(0o600)
    return files
