"""Event redaction, hashes, IDs, and signing/verifying events over federation.

Spec sections implemented here:

* redaction per room version (rooms/vN "Redactions");
* content and reference hashes (server-server-api "Calculating the ... hash for an event");
* event IDs (rooms fragments v1-event-ids, v3/v4 event IDs) and v12 room IDs (appendices
  "Room IDs": the create event's ID with ``!`` instead of ``$``);
* "Adding hashes and signatures to outgoing events" and "Validating hashes and signatures
  on received events" (steps 2 and 3 of "Checks performed on receipt of a PDU").

The hashing and redaction run in ``hs._native.event_hash`` (compiled when built). Signature
checks take a ``KeyLookup`` whose answers the caller has already fetched, so this module
does no I/O.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from nacl.signing import SigningKey

from hs._native import event_hash as _native
from hs._native._errors import CanonicalJSONError, EventHashError
from hs.core.keys import KeyLookup, is_signing_algorithm_supported
from hs.core.room_versions import V12, EventFormat, RoomVersion, get_room_version
from hs.core.signing import SignatureVerifyError, sign_json, verify_signature
from hs.core.unpadded_base64 import decode_base64, encode_base64, encode_base64_urlsafe

__all__ = [
    "CheckedEvent",
    "EventHashError",
    "add_hashes_and_sign",
    "check_event",
    "check_events",
    "compute_content_hash",
    "compute_event_id",
    "compute_reference_hash",
    "compute_room_id",
    "event_id_from_reference_hash",
    "make_event_id_v1",
    "redact",
    "required_signers",
]

RoomVersionLike = str | RoomVersion


def _rv(room_version: RoomVersionLike) -> RoomVersion:
    return get_room_version(room_version)


# ---- redaction and hashes --------------------------------------------------------------


def redact(event: dict[str, Any], room_version: RoomVersionLike) -> dict[str, Any]:
    """The event as the room version's redaction algorithm leaves it.

    Returns a new dict (with a new ``content``); deeper values are shared with ``event``.
    ``unsigned`` is dropped like every unlisted key; serving code adds ``redacted_because``.
    """
    return _native.redact(event, int(_rv(room_version).redaction_rules))  # type: ignore[no-any-return]


def compute_content_hash(event: dict[str, Any]) -> str:
    """Unpadded base64 SHA-256 of the event minus ``unsigned``/``signatures``/``hashes``."""
    return encode_base64(_native.content_hash(event))


def compute_reference_hash(event: dict[str, Any], room_version: RoomVersionLike) -> bytes:
    """SHA-256 digest of the redacted event minus ``signatures``/``unsigned``."""
    rules = int(_rv(room_version).redaction_rules)
    return _native.reference_hash(event, rules)  # type: ignore[no-any-return]


def event_id_from_reference_hash(digest: bytes, room_version: RoomVersionLike) -> str:
    """``$`` + the reference hash in the room version's alphabet (v3 standard, v4+ URL-safe)."""
    fmt = _rv(room_version).event_format
    if fmt is EventFormat.V1:
        raise EventHashError("v1/v2 event IDs are not derived from the reference hash")
    if fmt is EventFormat.V2:
        return "$" + encode_base64(digest)
    return "$" + encode_base64_urlsafe(digest)


def compute_event_id(event: dict[str, Any], room_version: RoomVersionLike) -> str:
    """The event's ID: its own ``event_id`` in v1/v2, else derived from the reference hash.

    From v3 the event must not carry an ``event_id`` key (it would be hashed).
    """
    rv = _rv(room_version)
    if rv.event_format is EventFormat.V1:
        event_id = event.get("event_id") if isinstance(event, dict) else None
        if not isinstance(event_id, str):
            raise EventHashError(f"room version {rv} events must carry a string event_id")
        return event_id
    return event_id_from_reference_hash(compute_reference_hash(event, rv), rv)


#: Characters of the opaque part of generated v1 event IDs (appendix: "SHOULD only consist
#: of alphanumeric characters" for localparts of this shape).
_OPAQUE_ALPHABET = string.ascii_letters + string.digits


def make_event_id_v1(server_name: str) -> str:
    """A fresh ``$opaque:server_name`` event ID for room versions 1 and 2."""
    opaque = "".join(secrets.choice(_OPAQUE_ALPHABET) for _ in range(18))
    return f"${opaque}:{server_name}"


def compute_room_id(create_event: dict[str, Any], room_version: RoomVersionLike = V12) -> str:
    """v12+: the room ID is the create event's ID with ``!`` instead of ``$``.

    The create event has no ``room_id`` in these versions (v12 auth rule 1.2).
    """
    rv = _rv(room_version)
    if not rv.room_id_from_create_event:
        raise EventHashError(f"room version {rv} does not derive room IDs from the create event")
    return "!" + compute_event_id(create_event, rv)[1:]


# ---- signing outgoing events ------------------------------------------------------------


def add_hashes_and_sign(
    event: dict[str, Any],
    room_version: RoomVersionLike,
    server_name: str,
    signing_key: SigningKey,
) -> dict[str, Any]:
    """Set ``hashes.sha256`` and add our signature over the redacted event, in place.

    Order per "Adding hashes and signatures to outgoing events": content hash first, then
    redact, sign, and copy the signatures back. Returns ``event``.
    """
    rv = _rv(room_version)
    digest = compute_content_hash(event)
    hashes = event.get("hashes")
    event["hashes"] = (
        {**hashes, "sha256": digest} if isinstance(hashes, dict) else {"sha256": digest}
    )
    signed = sign_json(redact(event, rv), server_name, signing_key)
    event["signatures"] = signed["signatures"]
    return event


# ---- verifying received events ----------------------------------------------------------


def _domain(identifier: Any, what: str) -> str:
    """The server part of ``@user:server`` / ``$id:server``; the port stays attached."""
    if isinstance(identifier, str):
        _, sep, domain = identifier.partition(":")
        if sep and domain:
            return domain
    raise SignatureVerifyError(f"cannot tell which server {what} {identifier!r} belongs to")


def _is_third_party_invite(event: dict[str, Any]) -> bool:
    content = event.get("content")
    return (
        event.get("type") == "m.room.member"
        and isinstance(content, dict)
        and content.get("membership") == "invite"
        and "third_party_invite" in content
    )


def required_signers(event: dict[str, Any], room_version: RoomVersionLike) -> frozenset[str]:
    """Servers whose signatures must be on ``event`` (fetch their keys before checking).

    * the ``sender``'s server, except for invites from a third-party invite, which the
      server relaying the invite may send for the original inviter (server-server-api
      "Validating hashes and signatures on received events");
    * v1/v2: also the server in the ``event_id`` (rooms/v3 "Authorization rules" note);
    * v8+: for a member event with ``join_authorised_via_users_server``, that user's
      server (v8 auth rule 4.2; checking it here means a forgery is dropped outright).
    """
    rv = _rv(room_version)
    servers = set()
    if not _is_third_party_invite(event):
        servers.add(_domain(event.get("sender"), "sender"))
    if rv.event_format is EventFormat.V1:
        servers.add(_domain(event.get("event_id"), "event ID"))
    content = event.get("content")
    if (
        rv.restricted_join_rule
        and event.get("type") == "m.room.member"
        and isinstance(content, dict)
        and "join_authorised_via_users_server" in content
    ):
        authoriser = content["join_authorised_via_users_server"]
        servers.add(_domain(authoriser, "join_authorised_via_users_server"))
    return frozenset(servers)


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    """Outcome of the signature and hash checks on one received event.

    ``error`` set: drop the event. Otherwise process ``event``, which is the redacted copy
    when the content hash did not match (``redacted`` is True).
    """

    event: dict[str, Any]
    event_id: str | None
    redacted: bool
    #: Servers with at least one valid signature from a known, unexpired key and none bad.
    signed_by: frozenset[str]
    error: ValueError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _server_signed(
    event: dict[str, Any],
    server: str,
    message: bytes,
    lookup: KeyLookup,
    not_before_ts: int | None,
) -> bool:
    """Run "Checking for a Signature" for one server, skipping unknown and expired keys.

    Returns whether at least one known key verified; raises if any known key's signature
    fails. ``not_before_ts`` (v5+ ``enforce_key_validity``): keys whose ``valid_until_ts``
    is earlier than the event's ``origin_server_ts`` are ignored.
    """
    signatures = event.get("signatures")
    ours = signatures.get(server) if isinstance(signatures, dict) else None
    if not isinstance(ours, dict):
        return False
    verified = False
    for kid, encoded in ours.items():
        if not is_signing_algorithm_supported(kid):
            continue
        found = lookup(server, kid)
        if found is None:
            continue
        verify_key, valid_until_ts = found
        if not_before_ts is not None and valid_until_ts < not_before_ts:
            continue
        what = f"signature {server} {kid}"
        try:
            raw = decode_base64(encoded)
        except ValueError:
            raise SignatureVerifyError(f"{what} is not base64") from None
        verify_signature(message, raw, verify_key, what)
        verified = True
    return verified


def _check_signatures(
    event: dict[str, Any], rv: RoomVersion, message: bytes, lookup: KeyLookup
) -> frozenset[str]:
    not_before: int | None = None
    if rv.enforce_key_validity:
        ts = event.get("origin_server_ts")
        if type(ts) is not int:
            raise SignatureVerifyError("origin_server_ts must be an integer")
        not_before = ts
    required = required_signers(event, rv)
    signed_by = set()
    for server in sorted(required):
        if not _server_signed(event, server, message, lookup, not_before):
            raise SignatureVerifyError(f"no valid signature from {server} with a known key")
        signed_by.add(server)
    if _is_third_party_invite(event):
        # The sender's server is not required here (the auth rules check the invite's
        # ``signed`` block); still insist that some server we know vouches for the event.
        signatures = event.get("signatures")
        named = signatures if isinstance(signatures, dict) else {}
        for server in sorted(s for s in named if isinstance(s, str)):
            if server not in signed_by:
                try:
                    if _server_signed(event, server, message, lookup, not_before):
                        signed_by.add(server)
                except SignatureVerifyError:
                    continue
        if not signed_by:
            raise SignatureVerifyError("third-party invite carries no valid signature")
    return frozenset(signed_by)


def _hash_matches(event: dict[str, Any], content_digest: bytes) -> bool:
    hashes = event.get("hashes")
    claimed = hashes.get("sha256") if isinstance(hashes, dict) else None
    if not isinstance(claimed, str):
        return False
    try:
        return decode_base64(claimed) == content_digest
    except ValueError:
        return False


def _finish(
    event: dict[str, Any],
    rv: RoomVersion,
    hashes: tuple[bytes, bytes, bytes],
    lookup: KeyLookup,
) -> CheckedEvent:
    content_digest, reference_digest, message = hashes
    if rv.event_format is EventFormat.V1:
        try:
            event_id = compute_event_id(event, rv)
        except EventHashError as exc:
            raise SignatureVerifyError(str(exc)) from exc
    else:
        event_id = event_id_from_reference_hash(reference_digest, rv)
    signed_by = _check_signatures(event, rv, message, lookup)
    if _hash_matches(event, content_digest):
        return CheckedEvent(event, event_id, False, signed_by)
    # "it is assumed that this is because we have only been given a redacted version"
    return CheckedEvent(redact(event, rv), event_id, True, signed_by)


def check_event(
    event: dict[str, Any], room_version: RoomVersionLike, lookup: KeyLookup
) -> CheckedEvent:
    """Signature then hash checks on one received event; raises ``SignatureVerifyError``.

    Signatures are checked over the redacted event (so a redacted copy still verifies);
    a content hash mismatch yields the redacted copy rather than an error.
    """
    rv = _rv(room_version)
    try:
        hashes = _native.hash_event(event, int(rv.redaction_rules))
    except (CanonicalJSONError, EventHashError) as exc:
        raise SignatureVerifyError(f"event cannot be hashed: {exc}") from exc
    return _finish(event, rv, hashes, lookup)


def check_events(
    events: Iterable[dict[str, Any]], room_version: RoomVersionLike, lookup: KeyLookup
) -> list[CheckedEvent]:
    """``check_event`` over a batch (e.g. a transaction's PDUs) without raising.

    Hashing runs natively over the batch in one call; a failing event gets ``error`` set
    and the rest are still checked.
    """
    rv = _rv(room_version)
    rules = int(rv.redaction_rules)
    batch = list(events)
    try:
        all_hashes: list[tuple[bytes, bytes, bytes] | None] = list(
            _native.hash_events(batch, rules)
        )
    except (CanonicalJSONError, EventHashError):
        all_hashes = []
        for event in batch:
            try:
                all_hashes.append(_native.hash_event(event, rules))
            except (CanonicalJSONError, EventHashError):
                all_hashes.append(None)
    results = []
    for event, hashes in zip(batch, all_hashes, strict=True):
        if hashes is None:
            error = SignatureVerifyError("event cannot be hashed (not canonical JSON)")
            results.append(CheckedEvent(event, None, False, frozenset(), error))
            continue
        try:
            results.append(_finish(event, rv, hashes, lookup))
        except SignatureVerifyError as exc:
            results.append(CheckedEvent(event, None, False, frozenset(), exc))
    return results
