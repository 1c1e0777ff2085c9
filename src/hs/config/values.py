"""Parsers for Synapse-style config values (durations like ``5m``, sizes like ``50M``).

Each parser raises ``ValueError`` with a message meant for an admin; the loader attaches
the key path and reports every problem at once.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlparse

_DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000,
                   "w": 604_800_000, "y": 31_536_000_000}
_SIZE_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d|w|y)?\s*$")
_SIZE_RE = re.compile(r"^\s*(\d+)\s*([KMGT]?)B?\s*$", re.IGNORECASE)
# Server name grammar from the spec appendix: hostname / IPv4 / [IPv6], optional port.
_SERVER_NAME_RE = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.\-]{1,255})(?::\d{1,5})?$"
)


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise ValueError(f"must be true or false, not {value!r}")


def as_int(value: Any, *, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, not {value}")
    return value


def as_number(value: Any, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, not {value}")
    return float(value)


def as_str(value: Any, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value):
        raise ValueError(f"must be a non-empty string, not {value!r}")
    return value


def as_str_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of strings, not {value!r}")
    return list(value)


def as_duration_ms(value: Any) -> int:
    """Synapse durations: an integer is milliseconds; a string may carry a unit suffix."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return int(match.group(1)) * _DURATION_UNITS[match.group(2) or "ms"]
    raise ValueError(f"must be a duration such as 30s, 5m, 1h, 7d or milliseconds, not {value!r}")


def as_size(value: Any) -> int:
    """Synapse sizes: an integer is bytes; a string may carry K/M/G/T (binary) suffixes."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str):
        match = _SIZE_RE.match(value)
        if match:
            return int(match.group(1)) * _SIZE_UNITS[match.group(2).upper()]
    raise ValueError(f"must be a size such as 50M, 512K or a number of bytes, not {value!r}")


def as_server_name(value: Any) -> str:
    name = as_str(value)
    if not _SERVER_NAME_RE.match(name):
        raise ValueError(f"{name!r} is not a valid server name (hostname[:port])")
    return name


def as_http_url(value: Any) -> str:
    url = as_str(value)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"must be an http(s) URL such as https://matrix.example.com/, not {url!r}")
    return url if url.endswith("/") else url + "/"


def as_ip_networks(value: Any) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    nets = []
    for item in as_str_list(value):
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a CIDR range such as 10.0.0.0/8") from None
    return nets
