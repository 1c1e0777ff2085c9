"""Client-side checks on events before they enter the pipeline.

The auth rules decide *who* may send what; these checks decide whether the event is
well-formed enough to be worth building: field and size limits (server-server API "Size
limits"), canonical JSON (signed events must encode canonically, so floats and integers
outside +-(2**53-1) are refused up front as ``M_BAD_JSON``) and the shape of well-known
state events whose bad content would break clients or later auth checks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hs.core.auth import identifiers as ids
from hs.core.canonical_json import CanonicalJSONError, encode_canonical_json
from hs.core.power_levels import is_valid_power_level
from hs.core.room_versions import RoomVersion
from hs.http.errors import MatrixError, bad_json

#: Spec, server-server "Size limits": the whole PDU, and each of these fields.
MAX_PDU_BYTES = 65_536
MAX_FIELD_BYTES = 255

_NAMED_LEVELS = ("ban", "kick", "redact", "invite", "events_default", "state_default",
                 "users_default")


def event_too_large() -> MatrixError:
    return MatrixError(413, "M_TOO_LARGE", f"Event is larger than {MAX_PDU_BYTES} bytes")


def check_field_sizes(**fields: str | None) -> None:
    """``room_id``/``sender``/``type``/``state_key`` must fit in 255 bytes each."""
    for name, value in fields.items():
        if value is not None and len(value.encode()) > MAX_FIELD_BYTES:
            raise bad_json(f"'{name}' is longer than {MAX_FIELD_BYTES} bytes")


def check_content(content: Any) -> bytes:
    """``content`` must be a JSON object that encodes canonically; returns its encoding."""
    if not isinstance(content, dict):
        raise bad_json("Event content must be a JSON object")
    try:
        encoded: bytes = encode_canonical_json(content)
    except CanonicalJSONError as exc:
        raise bad_json(f"Event content is not canonical JSON: {exc}") from None
    if len(encoded) > MAX_PDU_BYTES:
        raise event_too_large()
    return encoded


def check_power_levels_content(content: Mapping[str, Any], room_version: RoomVersion,
                               creators: frozenset[str] = frozenset()) -> None:
    """The shape rooms/vN requires of m.room.power_levels (the auth rules refuse the
    same events, but as a 403; a malformed body is the client's ``M_BAD_JSON``)."""
    for key in _NAMED_LEVELS:
        if key in content and not is_valid_power_level(content[key], room_version):
            raise bad_json(f"power levels: '{key}' is not a valid power level")
    for table in ("events", "notifications", "users"):
        value = content.get(table)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise bad_json(f"power levels: '{table}' must be an object")
        for sub, level in value.items():
            if not is_valid_power_level(level, room_version):
                raise bad_json(f"power levels: '{table}.{sub}' is not a valid power level")
            if table == "users" and not ids.is_valid_user_id(sub):
                raise bad_json(f"power levels: '{sub}' is not a valid user ID")
            if table == "users" and sub in creators:
                # rooms/v12: creators have infinite power and may not be listed.
                raise bad_json(f"power levels: room creator {sub} may not be in 'users'")


def _is_alias(value: Any) -> bool:
    return (isinstance(value, str) and value.startswith("#") and ":" in value
            and len(value.encode()) <= MAX_FIELD_BYTES)


async def check_canonical_alias_content(
    content: Mapping[str, Any], room_id: str, previous: Mapping[str, Any],
    lookup: Callable[[str], Awaitable[tuple[str, str] | None]],
) -> None:
    """client-server ``m.room.canonical_alias``: every newly named alias must exist and
    point to this room, else 400 ``M_BAD_ALIAS``. Aliases the previous event already
    named are not re-checked, so a deleted alias can still be dropped from the list."""
    alias = content.get("alias")
    alt = content.get("alt_aliases", [])
    if alias is not None and not _is_alias(alias):
        raise MatrixError(400, "M_INVALID_PARAM", "'alias' is not a room alias")
    if not isinstance(alt, list) or not all(_is_alias(a) for a in alt):
        raise MatrixError(400, "M_INVALID_PARAM", "'alt_aliases' must be a list of aliases")
    known: set[str] = set()
    if isinstance(previous.get("alias"), str):
        known.add(previous["alias"])
    if isinstance(previous.get("alt_aliases"), list):
        known.update(a for a in previous["alt_aliases"] if isinstance(a, str))
    for name in dict.fromkeys([*([alias] if alias is not None else []), *alt]):
        if name in known:
            continue
        found = await lookup(name)
        if found is None or found[0] != room_id:
            raise MatrixError(400, "M_BAD_ALIAS", f"Room alias {name} does not point to this room")
