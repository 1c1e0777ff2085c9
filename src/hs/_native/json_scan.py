"""Selector: the Cython strict-decoder walk, or its pure twin."""

from hs._native._loader import load

_impl = load("json_scan")

scan = _impl.scan
raw_colons = _impl.raw_colons

__all__ = ["raw_colons", "scan"]
