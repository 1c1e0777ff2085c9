"""Format, signature and hash checks on PDUs received from other servers.

Server-server API, "Checks performed on receipt of a PDU", steps 1-3: a PDU must be valid
for its room version (strict canonical JSON from v6, rooms/v6), carry valid signatures of
the servers that must sign it and a matching content hash (else it is redacted). All the
signature checks of a batch go through ``hs.core.events.check_events`` with one keyring
lookup for every key the batch names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from hs._native._errors import JSONValueError
from hs._native.json_scan import scan
from hs.core.canonical_json import CanonicalJSONError, encode_canonical_json
from hs.core.events import check_events, required_signers
from hs.core.pdu import PDU
from hs.core.room_versions import EventFormat, RoomVersion
from hs.core.signing import SignatureVerifyError
from hs.federation.keyring import Keyring
from hs.handlers.rooms.validation import MAX_FIELD_BYTES, MAX_PDU_BYTES

#: Synapse's bounds on references (the spec asks servers to keep them small).
MAX_PREV_EVENTS = 20
MAX_AUTH_EVENTS = 10


class BadPDU(ValueError):
    """The PDU is malformed for its room version; it is dropped (never stored)."""


def _need(event: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = event.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise BadPDU(f"'{key}' is missing or of the wrong type")
    return value


def _refs_ok(refs: list[Any], rv: RoomVersion) -> bool:
    if rv.event_format is EventFormat.V1:
        return all(isinstance(r, list) and len(r) == 2 and isinstance(r[0], str) for r in refs)
    return all(isinstance(r, str) for r in refs)


def check_format(event: Any, rv: RoomVersion) -> None:
    """Raise ``BadPDU`` unless ``event`` has the PDU shape of ``rv`` (step 1)."""
    if not isinstance(event, dict):
        raise BadPDU("PDU is not an object")
    if rv.strict_canonical_json:
        try:
            scan(event, False, True)
        except JSONValueError as exc:
            raise BadPDU(f"not canonical JSON for room version {rv.identifier}: {exc}") from None
    etype = _need(event, "type", str)
    sender = _need(event, "sender", str)
    if not sender.startswith("@") or ":" not in sender:
        raise BadPDU("'sender' is not a user ID")
    if not (rv.room_id_from_create_event and etype == "m.room.create"):
        room_id = _need(event, "room_id", str)
        if not room_id.startswith("!"):
            raise BadPDU("'room_id' is not a room ID")
    _need(event, "content", dict)
    for key in ("depth", "origin_server_ts"):
        if type(event.get(key)) is not int or event[key] < 0:
            raise BadPDU(f"'{key}' must be a non-negative integer")
    prev = _need(event, "prev_events", list)
    auth = _need(event, "auth_events", list)
    if len(prev) > MAX_PREV_EVENTS or len(auth) > MAX_AUTH_EVENTS:
        raise BadPDU("too many prev_events or auth_events")
    if not _refs_ok(prev, rv) or not _refs_ok(auth, rv):
        raise BadPDU("malformed prev_events or auth_events")
    _need(event, "hashes", dict)
    _need(event, "signatures", dict)
    if "state_key" in event and not isinstance(event["state_key"], str):
        raise BadPDU("'state_key' must be a string")
    if rv.event_format is EventFormat.V1:
        _need(event, "event_id", str)
    # Server-server API "Size limits".
    for key in ("type", "sender", "room_id", "state_key"):
        value = event.get(key)
        if isinstance(value, str) and len(value.encode()) > MAX_FIELD_BYTES:
            raise BadPDU(f"'{key}' is longer than {MAX_FIELD_BYTES} bytes")
    try:
        size = len(encode_canonical_json({k: v for k, v in event.items() if k != "unsigned"}))
    except CanonicalJSONError as exc:
        raise BadPDU(f"not canonical JSON: {exc}") from None
    if size > MAX_PDU_BYTES:
        raise BadPDU(f"PDU larger than {MAX_PDU_BYTES} bytes")


@dataclass(frozen=True, slots=True)
class Verified:
    """One input's outcome: ``pdu`` when it passed (possibly redacted), else ``error``."""

    raw: Any
    pdu: PDU | None
    error: str | None


def _key_requests(events: Iterable[dict[str, Any]], rv: RoomVersion
                  ) -> list[tuple[str, str, int]]:
    wanted: dict[tuple[str, str], int] = {}
    for event in events:
        try:
            servers = required_signers(event, rv)
        except SignatureVerifyError:
            continue
        sigs = event.get("signatures")
        ts = event.get("origin_server_ts") if rv.enforce_key_validity else 0
        for server in servers | (set(sigs) if isinstance(sigs, dict) else set()):
            theirs = sigs.get(server) if isinstance(sigs, dict) else None
            if isinstance(theirs, dict):
                for kid in theirs:
                    key = (str(server), str(kid))
                    wanted[key] = min(wanted.get(key, 2**62), ts if type(ts) is int else 0)
    return [(s, k, t) for (s, k), t in wanted.items()]


async def verify_pdus(keyring: Keyring, raw_events: Sequence[Any], rv: RoomVersion
                      ) -> list[Verified]:
    """Steps 1-3 over a batch: one key lookup, one ``check_events`` call."""
    shaped: list[dict[str, Any]] = []
    results: list[Verified | None] = []
    for raw in raw_events:
        try:
            check_format(raw, rv)
        except BadPDU as exc:
            results.append(Verified(raw, None, str(exc)))
            continue
        # From v3 the ID is the reference hash; an ``event_id`` key some servers add on
        # the wire is not part of the signed event.
        drop = ("unsigned",) if rv.event_format is EventFormat.V1 else ("unsigned", "event_id")
        event = {k: v for k, v in raw.items() if k not in drop}
        shaped.append(event)
        results.append(None)
    lookup = await keyring.key_lookup_for(_key_requests(shaped, rv))
    checked = iter(check_events(shaped, rv, lookup))
    out: list[Verified] = []
    for raw, result in zip(raw_events, results, strict=True):
        if result is not None:
            out.append(result)
            continue
        c = next(checked)
        if c.error is not None or c.event_id is None:
            out.append(Verified(raw, None, f"signature check failed: {c.error}"))
        else:
            out.append(Verified(raw, PDU(c.event, rv, c.event_id), None))
    return out
