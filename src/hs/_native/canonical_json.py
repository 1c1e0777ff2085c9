"""Selector: the Cython canonical JSON encoder, or its pure twin."""

from hs._native._errors import CanonicalJSONError
from hs._native._loader import load

_impl = load("canonical_json")

encode_canonical_json = _impl.encode_canonical_json

__all__ = ["CanonicalJSONError", "encode_canonical_json"]
