"""Canonical JSON (spec appendix "Canonical JSON") and a strict decoder for incoming JSON.

Public API:

* ``encode_canonical_json(value) -> bytes`` - the signed/hashed byte form. Raises
  ``CanonicalJSONError`` for floats, NaN/Infinity, integers outside
  [-(2**53)+1, 2**53-1], non-string keys and unencodable strings (lone surrogates).
  Compiled when ``hs._native`` is built; byte-identical to the ``canonicaljson`` library.
* Decoding (``decode_json``, ``decode_strict``, ``decode_for_room_version``): see
  ``hs.core.json_decode``.
"""

from __future__ import annotations

from hs._native._errors import CanonicalJSONError
from hs._native.canonical_json import encode_canonical_json

__all__ = ["CanonicalJSONError", "encode_canonical_json"]
