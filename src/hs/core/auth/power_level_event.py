"""Auth rule for ``m.room.power_levels`` events (rule 10 of rooms/v12.md).

Comments cite rooms/v12.md's sub-rule numbers (10.x). v1-v9 lack 10.1, 10.2 and 10.4,
so their 10.3 is numbered 10.1 there and so on; v1-v5 also do not check
``notifications`` (10.7/10.8 only look at ``events``).
"""

from __future__ import annotations

from hs.core.auth.errors import AuthError
from hs.core.auth.state import AuthState
from hs.core.pdu import PDU

__all__ = ["check_power_levels_event"]


def check_power_levels_event(event: PDU, state: AuthState) -> None:
    """Return if the new power levels are allowed, raise ``AuthError`` if not.

    The rule runs in ``state.levels`` (a ``hs._native.power_levels`` twin):
    ``power_levels_violation`` checks the shape (10.1-10.3), the creators (10.4) and every
    changed level against the sender's (10.6-10.10) and names the first violation.
    """
    room_version = event.room_version
    old = None if state.power_levels is None else state.power_levels.content
    sender = event.sender
    levels = state.levels
    creators = state.creators() if room_version.privileged_creators else frozenset()
    # 10.5: with no power levels yet, the sender's level is not needed.
    sender_level = 0 if old is None else state.user_level(sender)
    reason: str | None = levels.power_levels_violation(
        event.content, old, sender, sender_level, room_version, creators
    )
    if reason is not None:
        raise AuthError(reason)
