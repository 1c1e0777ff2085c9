"""Pure-Python twin of ``_event_hash_c``: redaction, content hash and reference hash.

Redaction rules are passed as the integer value of ``RedactionRules`` (1, 6, 8, 9, 11) so
the compiled twin needs no Python enum. Everything here follows the spec:

* redaction: rooms/v1..v11 "Redactions" (fragments v1/v6/v9/v11-redactions, v8 inline);
* content hash: server-server-api "Calculating the content hash for an event";
* reference hash: server-server-api "Calculating the reference hash for an event".

The bytes hashed for the reference hash are also exactly the bytes every server signature
covers (redacted event minus ``signatures`` and ``unsigned``), so ``hash_event`` returns
them too: verifying an event then needs no second encoding.
"""

from __future__ import annotations

import hashlib
from typing import Any

from hs._native._errors import EventHashError
from hs._native.canonical_json import encode_canonical_json

__all__ = ["content_hash", "hash_event", "hash_events", "redact", "reference_hash"]

#: Top-level keys kept by redaction in rule sets V1 to V9.
_TOP_V1 = frozenset(
    (
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "prev_state", "auth_events", "origin",
        "origin_server_ts", "membership",
    )
)  # fmt: skip
#: v11: ``origin``, ``membership`` and ``prev_state`` are no longer protected.
_TOP_V11 = _TOP_V1 - {"prev_state", "origin", "membership"}

#: Marker: the event type keeps its whole ``content`` (v11 ``m.room.create``).
KEEP_ALL = None

_PL_V1 = ("ban", "events", "events_default", "kick", "redact", "state_default", "users",
          "users_default")  # fmt: skip

_CONTENT_V1: dict[str, tuple[str, ...] | None] = {
    "m.room.member": ("membership",),
    "m.room.create": ("creator",),
    "m.room.join_rules": ("join_rule",),
    "m.room.power_levels": _PL_V1,
    "m.room.aliases": ("aliases",),
    "m.room.history_visibility": ("history_visibility",),
}
# v6: m.room.aliases loses its special case.
_CONTENT_V6 = {k: v for k, v in _CONTENT_V1.items() if k != "m.room.aliases"}
# v8: join rules keep ``allow`` (restricted rooms).
_CONTENT_V8 = {**_CONTENT_V6, "m.room.join_rules": ("join_rule", "allow")}
# v9: member events keep ``join_authorised_via_users_server``.
_CONTENT_V9 = {**_CONTENT_V8, "m.room.member": ("membership", "join_authorised_via_users_server")}
# v11: create keeps everything, power levels keep ``invite``, redaction keeps ``redacts``;
# member events also keep ``third_party_invite.signed`` (handled in ``_redact_content``).
_CONTENT_V11 = {
    **_CONTENT_V9,
    "m.room.create": KEEP_ALL,
    "m.room.power_levels": (*_PL_V1, "invite"),
    "m.room.redaction": ("redacts",),
}

#: rules value -> (top-level keys kept, per-type content keys kept)
RULES: dict[int, tuple[frozenset[str], dict[str, tuple[str, ...] | None]]] = {
    1: (_TOP_V1, _CONTENT_V1),
    6: (_TOP_V1, _CONTENT_V6),
    8: (_TOP_V1, _CONTENT_V8),
    9: (_TOP_V1, _CONTENT_V9),
    11: (_TOP_V11, _CONTENT_V11),
}

#: Removed before the content hash (spec: they change in transit or depend on the hash).
_NOT_IN_CONTENT_HASH = frozenset(("unsigned", "signatures", "hashes"))


def _rules(rules: int) -> tuple[frozenset[str], dict[str, tuple[str, ...] | None]]:
    found = RULES.get(rules) if isinstance(rules, int) else None
    if found is None:
        raise EventHashError(f"unknown redaction rules {rules!r}")
    return found


def _check_event(event: Any) -> None:
    if not isinstance(event, dict):
        raise EventHashError(f"an event must be a JSON object, not {type(event).__name__}")


def _redact_content(content: Any, etype: Any, rules: int, table: dict[str, Any]) -> dict[str, Any]:
    # A non-object ``content`` has no keys to keep: it becomes ``{}``.
    if not isinstance(content, dict):
        return {}
    if not isinstance(etype, str) or etype not in table:
        return {}
    keep = table[etype]
    if keep is KEEP_ALL:
        return dict(content)
    out = {key: content[key] for key in keep if key in content}
    if rules >= 11 and etype == "m.room.member":
        # v11: "it allows the ``signed`` key of the ``third_party_invite`` key".
        tpi = content.get("third_party_invite")
        if isinstance(tpi, dict) and "signed" in tpi:
            out["third_party_invite"] = {"signed": tpi["signed"]}
    return out


def _redacted(event: dict[str, Any], rules: int) -> dict[str, Any]:
    top, table = _rules(rules)
    # list(): a key's __hash__/__eq__ could mutate ``event`` (the compiled twin copies too).
    out = {key: value for key, value in list(event.items()) if key in top}
    if "content" in out:
        out["content"] = _redact_content(out["content"], event.get("type"), rules, table)
    return out


def redact(event: dict[str, Any], rules: int) -> dict[str, Any]:
    """Return the redacted copy of ``event`` (new top-level and ``content`` dicts).

    Values below those two levels are shared with ``event``: copy before mutating them.
    """
    _check_event(event)
    return _redacted(event, rules)


def content_hash(event: dict[str, Any]) -> bytes:
    """SHA-256 digest of the canonical event without ``unsigned``, ``signatures``, ``hashes``."""
    _check_event(event)
    stripped = {k: v for k, v in list(event.items()) if k not in _NOT_IN_CONTENT_HASH}
    return hashlib.sha256(encode_canonical_json(stripped)).digest()


def _signed_part(event: dict[str, Any], rules: int) -> bytes:
    redacted = _redacted(event, rules)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    return encode_canonical_json(redacted)


def reference_hash(event: dict[str, Any], rules: int) -> bytes:
    """SHA-256 digest of the canonical redacted event without ``signatures``/``unsigned``."""
    _check_event(event)
    return hashlib.sha256(_signed_part(event, rules)).digest()


def hash_event(event: dict[str, Any], rules: int) -> tuple[bytes, bytes, bytes]:
    """``(content hash, reference hash, signed bytes)`` of one event.

    ``signed bytes`` is the canonical JSON that server signatures cover.
    """
    _check_event(event)
    _rules(rules)
    chash = content_hash(event)
    signed = _signed_part(event, rules)
    return chash, hashlib.sha256(signed).digest(), signed


def hash_events(events: list[dict[str, Any]], rules: int) -> list[tuple[bytes, bytes, bytes]]:
    """``hash_event`` over a list; the first bad event raises."""
    _rules(rules)
    return [hash_event(event, rules) for event in events]
