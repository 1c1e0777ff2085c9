"""User ID grammar (spec appendix "User Identifiers") and random ID generation."""

from __future__ import annotations

import re
import secrets
import string

from hs.http.errors import MatrixError

_LOCALPART_RE = re.compile(r"^[a-z0-9._=\-/+]+$")
MAX_USER_ID_LENGTH = 255
_DEVICE_CHARS = string.ascii_uppercase
_LOCALPART_CHARS = string.ascii_lowercase + string.digits


def user_id_for(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def validate_localpart(localpart: str, server_name: str, *, allow_numeric: bool = False) -> None:
    """Raise 400 M_INVALID_USERNAME for localparts outside the grammar."""
    if not localpart or not _LOCALPART_RE.match(localpart):
        raise MatrixError(400, "M_INVALID_USERNAME",
                          "User ID can only contain characters a-z, 0-9, or '=_-./+'")
    if localpart.isdigit() and not allow_numeric:
        raise MatrixError(400, "M_INVALID_USERNAME", "Numeric user IDs are reserved for guests")
    if len(user_id_for(localpart, server_name)) > MAX_USER_ID_LENGTH:
        raise MatrixError(400, "M_INVALID_USERNAME",
                          f"User ID may not be longer than {MAX_USER_ID_LENGTH} characters")


def localpart_of(user_id_or_localpart: str, server_name: str) -> str | None:
    """The local part of ``@x:server`` or a bare ``x``; None for another server's user."""
    if user_id_or_localpart.startswith("@"):
        local, sep, server = user_id_or_localpart[1:].partition(":")
        if not sep or server != server_name:
            return None
        return local
    return user_id_or_localpart


def random_localpart() -> str:
    return "u" + "".join(secrets.choice(_LOCALPART_CHARS) for _ in range(11))


def random_guest_localpart() -> str:
    return str(secrets.randbelow(10**15) + 10**14)


def random_device_id() -> str:
    return "".join(secrets.choice(_DEVICE_CHARS) for _ in range(10))
