"""Just enough identifier grammar for the auth rules (spec appendices "Identifier Grammar").

The rules compare domains (create event, ``m.federate``, v1-v5 aliases, v1-v2
redactions) and validate user IDs (``users`` in power levels, v12
``additional_creators``). User IDs are checked with the *historical* grammar, which
servers must still accept over federation: any localpart without ``:`` or NUL.
"""

from __future__ import annotations

# The validators moved to the pure power-levels twin, whose Cython twin validates whole
# ``users`` tables at C speed; they are re-exported here unchanged.
from hs._native._power_levels_py import is_valid_server_name, is_valid_user_id

__all__ = ["domain_of", "is_valid_server_name", "is_valid_user_id"]


def domain_of(identifier: str) -> str | None:
    """The server name after the first ``:`` of a sigilled ID, or None if there is none."""
    _, sep, domain = identifier.partition(":")
    return domain if sep else None
