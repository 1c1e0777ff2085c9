"""Selector: the Cython auth-rules verdict for state resolution, or its pure twin.

Type checkers see the pure twin's signatures; at run time the loader picks the twin.
"""

from typing import TYPE_CHECKING

from hs._native._loader import load

if TYPE_CHECKING:
    from hs._native._auth_rules_py import auth_keys, is_allowed
else:
    _impl = load("auth_rules")
    auth_keys = _impl.auth_keys
    is_allowed = _impl.is_allowed

__all__ = ["auth_keys", "is_allowed"]
