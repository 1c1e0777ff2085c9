"""Just enough identifier grammar for the auth rules (spec appendices "Identifier Grammar").

The rules compare domains (create event, ``m.federate``, v1-v5 aliases, v1-v2
redactions) and validate user IDs (``users`` in power levels, v12
``additional_creators``). User IDs are checked with the *historical* grammar, which
servers must still accept over federation: any localpart without ``:`` or NUL.
"""

from __future__ import annotations

import re

__all__ = ["domain_of", "is_valid_server_name", "is_valid_user_id"]

# appendices "Server Name": IPv4 / "[" IPv6 "]" / DNS name, then an optional port.
_SERVER_NAME = re.compile(
    r"(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?", re.ASCII
)
_MAX_USER_ID_BYTES = 255


def domain_of(identifier: str) -> str | None:
    """The server name after the first ``:`` of a sigilled ID, or None if there is none."""
    _, sep, domain = identifier.partition(":")
    return domain if sep else None


def is_valid_server_name(name: str) -> bool:
    return _SERVER_NAME.fullmatch(name) is not None


def is_valid_user_id(value: object) -> bool:
    """``@localpart:server_name`` under the historical (lenient) localpart grammar."""
    if not isinstance(value, str) or not value.startswith("@"):
        return False
    try:
        if len(value.encode("utf-8")) > _MAX_USER_ID_BYTES:
            return False
    except UnicodeEncodeError:  # lone surrogates are not code points a user ID may hold
        return False
    localpart, sep, server_name = value[1:].partition(":")
    if not sep or "\x00" in localpart:
        return False
    return is_valid_server_name(server_name)
