"""Server signing keys: generation, the key file format, key IDs and base64 forms.

Keys are PyNaCl ``SigningKey``/``VerifyKey`` objects carrying ``alg`` and ``version``
attributes, exactly as ``signedjson`` makes them, so keys from either library work with
both. A key ID is ``<alg>:<version>`` (spec appendix "Signing Details"); only ``ed25519`` is
defined by the spec.

The key file holds one key per line, ``ed25519 <version> <unpadded base64 seed>``: the
format Synapse writes, so existing server keys can be reused.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey, VerifyKey

from hs.core.unpadded_base64 import decode_base64, encode_base64

__all__ = [
    "ED25519",
    "KeyFormatError",
    "KeyLookup",
    "decode_signing_key_base64",
    "decode_verify_key_base64",
    "decode_verify_key_bytes",
    "encode_signing_key_base64",
    "encode_verify_key_base64",
    "generate_signing_key",
    "get_verify_key",
    "is_signing_algorithm_supported",
    "key_id",
    "read_signing_key_file",
    "read_signing_keys",
    "static_key_lookup",
    "write_signing_key_file",
    "write_signing_keys",
]

ED25519 = "ed25519"

#: A key version is the part after ``ed25519:``; server-server keys.yaml: ``[a-zA-Z0-9_]``.
_VERSION_RE = re.compile(r"^[A-Za-z0-9_]+$")

#: ``(server_name, key_id) -> (verify key, valid_until_ts in ms)``, or None when unknown.
#: Verification code takes this so it stays free of I/O: the caller fetches keys first.
KeyLookup = Callable[[str, str], "tuple[VerifyKey, int] | None"]


class KeyFormatError(ValueError):
    """A key, key ID or key file line is malformed or uses an unsupported algorithm."""


def _tag(key: Any, alg: str, version: str) -> Any:
    # PyNaCl key classes have no __slots__, so the attributes signedjson uses can be set.
    key.alg = alg
    key.version = version
    return key


def _version(key: SigningKey | VerifyKey) -> str:
    version = getattr(key, "version", None)
    if not isinstance(version, str):
        raise KeyFormatError("key has no 'version' attribute (make it with hs.core.keys)")
    return version


def _check(alg: str, version: str) -> None:
    if alg != ED25519:
        raise KeyFormatError(f"unsupported signing algorithm {alg!r}")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise KeyFormatError(f"invalid key version {version!r}")


def generate_signing_key(version: str) -> SigningKey:
    """A fresh random ed25519 signing key with the given version."""
    _check(ED25519, version)
    return _tag(SigningKey.generate(), ED25519, version)  # type: ignore[no-any-return]


def get_verify_key(signing_key: SigningKey) -> VerifyKey:
    """The public half of ``signing_key``, carrying the same ``alg`` and ``version``."""
    return _tag(  # type: ignore[no-any-return]
        signing_key.verify_key, getattr(signing_key, "alg", ED25519), _version(signing_key)
    )


def key_id(key: SigningKey | VerifyKey) -> str:
    """``<alg>:<version>``, e.g. ``ed25519:a_1``."""
    return f"{getattr(key, 'alg', ED25519)}:{_version(key)}"


def is_signing_algorithm_supported(key_id: str) -> bool:
    """Whether signatures under this key ID can be checked (only ed25519 is defined)."""
    return isinstance(key_id, str) and key_id.startswith(ED25519 + ":")


def _split_key_id(key_id: str) -> tuple[str, str]:
    if not isinstance(key_id, str) or ":" not in key_id:
        raise KeyFormatError(f"invalid key ID {key_id!r}")
    alg, version = key_id.split(":", 1)
    _check(alg, version)
    return alg, version


def _decode32(key_base64: str) -> bytes:
    try:
        raw = decode_base64(key_base64)
    except ValueError as exc:
        raise KeyFormatError(f"key is not base64: {exc}") from None
    if len(raw) != 32:
        raise KeyFormatError(f"ed25519 keys are 32 bytes, got {len(raw)}")
    return raw


def decode_signing_key_base64(alg: str, version: str, key_base64: str) -> SigningKey:
    """A signing key from its unpadded base64 seed."""
    _check(alg, version)
    return _tag(SigningKey(_decode32(key_base64)), alg, version)  # type: ignore[no-any-return]


def encode_signing_key_base64(signing_key: SigningKey) -> str:
    """The unpadded base64 seed (the secret: only for the key file)."""
    return encode_base64(bytes(signing_key))


def decode_verify_key_bytes(key_id: str, key: bytes) -> VerifyKey:
    """A verify key from raw bytes and its key ID (``ed25519:<version>``)."""
    alg, version = _split_key_id(key_id)
    if len(key) != 32:
        raise KeyFormatError(f"ed25519 keys are 32 bytes, got {len(key)}")
    return _tag(VerifyKey(key), alg, version)  # type: ignore[no-any-return]


def decode_verify_key_base64(alg: str, version: str, key_base64: str) -> VerifyKey:
    """A verify key as published in ``/_matrix/key/v2/server`` (``verify_keys.*.key``)."""
    _check(alg, version)
    return _tag(VerifyKey(_decode32(key_base64)), alg, version)  # type: ignore[no-any-return]


def encode_verify_key_base64(verify_key: VerifyKey) -> str:
    """Unpadded base64 of the public key, as published."""
    return encode_base64(bytes(verify_key))


def read_signing_keys(lines: str | Iterable[str]) -> list[SigningKey]:
    """Parse key file text (or its lines); blank lines are skipped."""
    if isinstance(lines, str):
        lines = lines.splitlines()
    keys = []
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 3:
            raise KeyFormatError(f"line {number}: expected '<alg> <version> <base64 seed>'")
        keys.append(decode_signing_key_base64(*fields))
    return keys


def write_signing_keys(keys: Iterable[SigningKey]) -> str:
    """Key file text: one ``<alg> <version> <seed>`` line per key."""
    return "".join(
        f"{getattr(k, 'alg', ED25519)} {_version(k)} {encode_signing_key_base64(k)}\n" for k in keys
    )


def read_signing_key_file(path: str | os.PathLike[str]) -> list[SigningKey]:
    """Read every key in a (Synapse-compatible) signing key file."""
    return read_signing_keys(Path(path).read_text(encoding="ascii"))


def write_signing_key_file(path: str | os.PathLike[str], keys: Iterable[SigningKey]) -> None:
    """Write a key file readable only by its owner (the seeds are secrets)."""
    text = write_signing_keys(keys)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(text)


def static_key_lookup(keys: Mapping[str, Mapping[str, tuple[VerifyKey, int]]]) -> KeyLookup:
    """A ``KeyLookup`` over ``{server_name: {key_id: (verify_key, valid_until_ts)}}``."""

    def lookup(server_name: str, key_id: str) -> tuple[VerifyKey, int] | None:
        return keys.get(server_name, {}).get(key_id)

    return lookup
