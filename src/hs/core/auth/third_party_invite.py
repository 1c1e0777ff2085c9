"""Checking the identity server's signature on a third-party invite's ``signed`` object.

Member rule "invite" 1.7 (every room version): allow if any signature in
``content.third_party_invite.signed`` verifies under any public key of the matching
``m.room.third_party_invite`` event, whose keys are ``content.public_key`` and each
``content.public_keys[].public_key`` (unpadded base64, standard or URL-safe). The
signature covers the canonical JSON of ``signed`` without ``signatures`` and
``unsigned`` (appendices "Signing JSON", via ``hs.core.signing``). Key validity URLs
are not consulted: the auth rules must give the same answer on every server, always.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from nacl.signing import VerifyKey

from hs.core.canonical_json import CanonicalJSONError
from hs.core.signing import SignatureVerifyError, signed_bytes, verify_signature
from hs.core.unpadded_base64 import decode_base64

__all__ = ["public_keys_of", "signed_by_any"]

_ED25519_KEY_BYTES = 32


def public_keys_of(invite_content: Mapping[str, Any]) -> list[VerifyKey]:
    """The usable ed25519 keys of an ``m.room.third_party_invite``; bad ones are skipped."""
    encoded: list[object] = [invite_content.get("public_key")]
    extra = invite_content.get("public_keys")
    if isinstance(extra, list):
        encoded.extend(e.get("public_key") for e in extra if isinstance(e, dict))
    keys = []
    for text in encoded:
        if not isinstance(text, str):
            continue
        try:
            raw = decode_base64(text)
        except ValueError:
            continue
        if len(raw) == _ED25519_KEY_BYTES:
            keys.append(VerifyKey(raw))
    return keys


def _signatures(signed: Mapping[str, Any]) -> Iterator[bytes]:
    by_server = signed.get("signatures")
    if not isinstance(by_server, dict):
        return
    for by_key in by_server.values():
        if not isinstance(by_key, dict):
            continue
        for sig in by_key.values():
            if not isinstance(sig, str):
                continue
            try:
                yield decode_base64(sig)
            except ValueError:
                continue


def signed_by_any(signed: dict[str, Any], keys: list[VerifyKey]) -> bool:
    """Whether some signature in ``signed`` verifies under some key in ``keys``.

    Key IDs are ignored: the invite event's keys have none, so every signature is tried
    against every key.
    """
    if not keys:
        return False
    try:
        message = signed_bytes(signed)
    except CanonicalJSONError:
        return False
    for sig in _signatures(signed):
        for key in keys:
            try:
                verify_signature(message, sig, key, "third-party invite")
            except SignatureVerifyError:
                continue
            return True
    return False
