"""Host names, addresses and ports in the configuration (listen addresses, URLs)."""

from __future__ import annotations

import ipaddress
import re

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")  # "_": compose names


def check_port(port: int) -> int:
    """A TCP port something can listen on or connect to: 1-65535 (0 means "any" to bind)."""
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return port


def check_host(host: str) -> str:
    """An IPv4 or IPv6 address, or a DNS name (RFC 1123 labels)."""
    if re.fullmatch(r"[\d.]+", host):  # looks like IPv4: must be one ("999.1.1.1" is not)
        address(host, ipaddress.IPv4Address)
    elif ":" in host:
        address(host, ipaddress.IPv6Address)
    elif len(host) > 253 or not all(_HOSTNAME_LABEL.match(p) for p in host.split(".")):
        raise ValueError(f"{host[:60]!r} is not a host name or an IP address")
    return host


def address(text: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> None:
    try:
        kind(text)
    except ValueError:
        raise ValueError(f"{text[:60]!r} is not a valid {kind.__name__[:4]} address") from None
