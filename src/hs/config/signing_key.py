"""Signing key file handling for the CLI, on top of ``hs.core.keys`` (Synapse's
``ed25519 <version> <seed>`` format)."""

from __future__ import annotations

import os
import secrets
import string
from pathlib import Path

from nacl.signing import SigningKey

from hs.core.keys import generate_signing_key, key_id, read_signing_key_file, write_signing_key_file

_VERSION_CHARS = string.ascii_letters + string.digits + "_"


def generate_key_file(path: str | os.PathLike[str]) -> str:
    """Write a fresh ed25519 key (mode 0600, never overwriting) and return its key ID."""
    target = Path(path)
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    key = generate_signing_key("a_" + "".join(secrets.choice(_VERSION_CHARS) for _ in range(4)))
    write_signing_key_file(target, [key])
    return key_id(key)


def read_key_file(path: str | os.PathLike[str]) -> list[tuple[str, SigningKey]]:
    """Every key in the file as ``(key ID, key)``; raises ``ValueError`` when malformed."""
    try:
        keys = read_signing_key_file(path)
    except UnicodeDecodeError:
        raise ValueError("the file is not a text key file") from None
    if not keys:
        raise ValueError("the file contains no keys")
    return [(key_id(k), k) for k in keys]
