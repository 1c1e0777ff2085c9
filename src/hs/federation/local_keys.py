"""Our own signing keys as the federation layer sees them: current keys (sign requests,
events and our key response) and old keys (``old_signing_keys``, published with
``expired_ts`` so others can still check events we signed with them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from hs.core.keys import KeyFormatError, decode_verify_key_base64, get_verify_key, key_id

#: Synapse's ``key_refresh_interval`` default: how long our key response says it is valid.
DEFAULT_KEY_VALIDITY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class OldVerifyKey:
    verify_key: VerifyKey
    expired_ts: int


@dataclass(frozen=True)
class LocalKeys:
    """``signing_keys[0]`` signs outgoing requests; every current key signs key responses."""

    server_name: str
    signing_keys: Sequence[SigningKey]
    old_keys: Mapping[str, OldVerifyKey] = field(default_factory=dict)
    #: ``key_refresh_interval`` in milliseconds.
    key_validity_ms: int = DEFAULT_KEY_VALIDITY_MS

    def __post_init__(self) -> None:
        if not self.signing_keys:
            raise ValueError("at least one signing key is required")

    @property
    def signing_key(self) -> SigningKey:
        return self.signing_keys[0]

    def verify_keys(self) -> dict[str, VerifyKey]:
        return {key_id(k): get_verify_key(k) for k in self.signing_keys}

    def lookup(self, kid: str, now_ms: int) -> tuple[VerifyKey, int] | None:
        """Our key as the keyring reports remote ones; current keys are valid a period ahead."""
        for key in self.signing_keys:
            if key_id(key) == kid:
                return get_verify_key(key), now_ms + self.key_validity_ms
        old = self.old_keys.get(kid)
        return None if old is None else (old.verify_key, old.expired_ts)


def parse_old_signing_keys(raw: Mapping[str, Any] | None) -> dict[str, OldVerifyKey]:
    """Synapse's ``old_signing_keys``: ``{"ed25519:id": {"key": base64, "expired_ts": ms}}``."""
    result: dict[str, OldVerifyKey] = {}
    for kid, entry in (raw or {}).items():
        if not isinstance(kid, str) or ":" not in kid:
            raise KeyFormatError(f"old_signing_keys: bad key ID {kid!r}")
        if not isinstance(entry, Mapping):
            raise KeyFormatError(f"old_signing_keys.{kid}: expected {{key, expired_ts}}")
        key, expired = entry.get("key"), entry.get("expired_ts")
        if not isinstance(key, str) or type(expired) is not int:
            raise KeyFormatError(f"old_signing_keys.{kid}: needs 'key' (base64) and "
                                 "'expired_ts' (ms)")
        alg, version = kid.split(":", 1)
        result[kid] = OldVerifyKey(decode_verify_key_base64(alg, version, key), expired)
    return result
