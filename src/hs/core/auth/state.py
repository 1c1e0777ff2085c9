"""``AuthState``: the questions the auth rules ask of the state an event is checked against."""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from hs._native import power_levels as _default_levels
from hs.core.pdu import PDU, StateKey
from hs.core.power_levels import (
    DEFAULT_LEVELS,
    get_event_power_level,
    get_named_level,
    get_room_creators,
)

__all__ = ["AuthState"]


class AuthState:
    """Read-only view of auth state keyed by (type, state_key).

    Absent memberships read as None (the spec's "not joined"); absent power levels read
    as the defaults (spec note: "Power levels are inferred from defaults").

    ``levels`` is the ``hs._native.power_levels`` twin that reads user levels and checks
    power levels events (the selector's choice unless a caller, such as state resolution
    comparing twins, names one).
    """

    __slots__ = ("create", "events", "levels", "power_levels")

    def __init__(self, events: Mapping[StateKey, PDU], levels: ModuleType | None = None) -> None:
        self.events = events
        self.levels: ModuleType = _default_levels if levels is None else levels
        self.create: PDU | None = events.get(("m.room.create", ""))
        self.power_levels: PDU | None = events.get(("m.room.power_levels", ""))

    @property
    def pl_content(self) -> Mapping[str, Any] | None:
        return None if self.power_levels is None else self.power_levels.content

    def membership(self, user_id: str) -> str | None:
        member = self.events.get(("m.room.member", user_id))
        return None if member is None else member.membership

    @property
    def join_rule(self) -> str | None:
        join_rules = self.events.get(("m.room.join_rules", ""))
        if join_rules is None:
            return None
        rule = join_rules.content.get("join_rule")
        return rule if isinstance(rule, str) else None

    def creators(self) -> frozenset[str]:
        return frozenset() if self.create is None else get_room_creators(self.create)

    def user_level(self, user_id: str) -> int | float:
        level: int | float = self.levels.user_level(user_id, self.create, self.power_levels)
        return level

    def named_level(self, name: str) -> int:
        """``invite``/``kick``/``ban``/``redact`` with the spec's defaults."""
        return get_named_level(name, self.pl_content, DEFAULT_LEVELS[name])

    def required_level(self, event: PDU) -> int:
        return get_event_power_level(event.type, event.state_key, self.pl_content)
