"""Unpadded base64 (spec appendix "Unpadded Base64").

Encoding never emits padding. Decoding accepts input with or without padding, as the
spec asks, and rejects anything that is not base64.
"""

from __future__ import annotations

import base64 as _b64
import binascii

__all__ = ["decode_base64", "encode_base64", "encode_base64_urlsafe"]


def encode_base64(data: bytes) -> str:
    """Standard alphabet, no padding."""
    return _b64.b64encode(data).rstrip(b"=").decode("ascii")


def encode_base64_urlsafe(data: bytes) -> str:
    """URL-safe alphabet (``-`` and ``_``), no padding: event IDs from room version 4."""
    return _b64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode_base64(text: str) -> bytes:
    """Decode standard or URL-safe base64, padded or not. Raises ``ValueError``."""
    if not isinstance(text, str):
        raise ValueError("base64 input must be a string")
    raw = text.rstrip("=")
    if len(raw) % 4 == 1:
        raise ValueError("invalid base64 length")
    padded = raw + "=" * (-len(raw) % 4)
    urlsafe = "-" in raw or "_" in raw
    if urlsafe and ("+" in raw or "/" in raw):
        raise ValueError("invalid base64: mixes the standard and URL-safe alphabets")
    altchars = b"-_" if urlsafe else None
    try:
        return _b64.b64decode(padded, altchars=altchars, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"invalid base64: {exc}") from None
