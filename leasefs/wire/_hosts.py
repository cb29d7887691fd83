"""Which addresses only this machine can reach: the one line between a coordinator that may
speak plain http and one that must not (its tokens would cross a network in the clear)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback_host(host: str) -> bool:
    """True for a loopback address or name (``127.0.0.1``, ``::1``, ``localhost``); False for
    any other, the wildcard ``0.0.0.0`` included (it listens on every interface)."""
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_plain_remote(url: str) -> bool:
    """Does ``url`` speak plain http to a host off this machine?"""
    parts = urlsplit(url)
    return parts.scheme == "http" and not is_loopback_host(parts.hostname or "")
