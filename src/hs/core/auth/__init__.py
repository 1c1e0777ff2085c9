"""Event authorization rules for room versions 1 to 12 (spec, rooms/vN "Authorisation rules").

Public API:

* ``check_auth_rules(event, auth_events, *, check_auth_event_selection=True)`` - raise
  ``AuthError`` unless the event is allowed against the given state.
* ``auth_types_for_event(event_type, sender, state_key, content, room_version)`` - the
  state keys a new event must cite as ``auth_events`` (server-server "Auth events
  selection").
* ``AuthError`` - carries a human-readable ``reason``.

Power level arithmetic lives in ``hs.core.power_levels``.
"""

from hs.core.auth.errors import AuthError
from hs.core.auth.rules import check_auth_rules
from hs.core.auth.selection import auth_types_for_event

__all__ = ["AuthError", "auth_types_for_event", "check_auth_rules"]
