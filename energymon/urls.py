"""What a server URL may carry and how it is shown.

A password inside a URL travels into every log line, exception and health report that names
the server, so URLs with credentials are refused outright (the credentials belong in their own
settings), and every URL a message shows goes through `mask_url` all the same.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit, urlunsplit

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def _split(url: str) -> SplitResult | None:
    try:
        return urlsplit(url)
    except ValueError:
        return None


def is_http_url(url: str) -> bool:
    """An http:// or https:// URL naming a host (and a valid port, if any)."""
    parts = _split(url)
    if parts is None or parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number in range
    except ValueError:
        return False
    return True


def has_credentials(url: str) -> bool:
    parts = _split(url)
    return parts is not None and (parts.username is not None or parts.password is not None)


def mask_url(url: str) -> str:
    """`url` with any user and password replaced, fit for a log or an error message."""
    parts = _split(url)
    if parts is None or "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))


def is_loopback(url: str) -> bool:
    """True when the URL's host is this machine: traffic to it never crosses a network."""
    parts = _split(url)
    host = (parts.hostname or "") if parts is not None else ""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_plain_http(url: str) -> bool:
    parts = _split(url)
    return parts is not None and parts.scheme.lower() == "http"
