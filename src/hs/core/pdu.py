"""``PDU``: a persistent data unit (room event) as the protocol core sees it.

A PDU wraps the event's JSON dict (``data``, exactly as signed and sent over federation)
with the two facts that are not always inside it: its event ID (derived from the reference
hash from room version 3) and its room version. Auth rules, state resolution and the DAG
helpers work on ``PDU`` objects; storage and federation build them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hs.core.room_versions import EventFormat, RoomVersion

__all__ = ["PDU", "StateKey"]

#: (event type, state key): how state maps are keyed throughout hs.
StateKey = tuple[str, str]


class PDU:
    """An event plus its ID and room version. Treat ``data`` as immutable."""

    __slots__ = ("_auth_ids", "_prev_ids", "data", "event_id", "rejected_reason", "room_version")

    def __init__(
        self,
        data: dict[str, Any],
        room_version: RoomVersion,
        event_id: str | None = None,
        rejected_reason: str | None = None,
    ) -> None:
        self.data = data
        self.room_version = room_version
        if event_id is None:
            if room_version.event_format is EventFormat.V1:
                event_id = data["event_id"]
            else:
                # Imported here: events imports pdu for its own helpers.
                from hs.core.events import compute_event_id

                event_id = compute_event_id(data, room_version.identifier)
        self.event_id: str = event_id
        #: Why the event was rejected (kept so it is never served as if accepted), or None.
        self.rejected_reason = rejected_reason
        self._prev_ids: tuple[str, ...] | None = None
        self._auth_ids: tuple[str, ...] | None = None

    # ---- the common fields -------------------------------------------------------------
    @property
    def type(self) -> str:
        return self.data["type"]  # type: ignore[no-any-return]

    @property
    def state_key(self) -> str | None:
        return self.data.get("state_key")

    def is_state(self) -> bool:
        return "state_key" in self.data

    @property
    def state_tuple(self) -> StateKey:
        """``(type, state_key)``; only meaningful for state events."""
        return (self.data["type"], self.data["state_key"])

    @property
    def sender(self) -> str:
        return self.data["sender"]  # type: ignore[no-any-return]

    @property
    def room_id(self) -> str:
        room_id = self.data.get("room_id")
        if room_id is None and self.room_version.room_id_from_create_event \
                and self.data.get("type") == "m.room.create":
            # v12: the create event has no room_id; the room ID is derived from its event ID.
            return "!" + self.event_id[1:]
        if not isinstance(room_id, str):
            raise KeyError("room_id")
        return room_id

    @property
    def content(self) -> Mapping[str, Any]:
        content = self.data.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def depth(self) -> int:
        return int(self.data.get("depth", 0))

    @property
    def origin_server_ts(self) -> int:
        return int(self.data.get("origin_server_ts", 0))

    @property
    def membership(self) -> str | None:
        value = self.content.get("membership")
        return value if isinstance(value, str) else None

    @property
    def redacts(self) -> str | None:
        """The redacted event's ID, from ``content`` in v11+ and the top level before."""
        if self.room_version.redacts_in_content:
            value = self.content.get("redacts")
        else:
            value = self.data.get("redacts")
        return value if isinstance(value, str) else None

    def prev_event_ids(self) -> tuple[str, ...]:
        if self._prev_ids is None:
            self._prev_ids = _ids(self.data.get("prev_events", ()), self.room_version)
        return self._prev_ids

    def auth_event_ids(self) -> tuple[str, ...]:
        if self._auth_ids is None:
            self._auth_ids = _ids(self.data.get("auth_events", ()), self.room_version)
        return self._auth_ids

    def __repr__(self) -> str:
        key = f" {self.state_key!r}" if self.is_state() else ""
        return f"<PDU {self.event_id} {self.type}{key} from {self.sender}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PDU) and other.event_id == self.event_id

    def __hash__(self) -> int:
        return hash(self.event_id)


def _ids(refs: Any, room_version: RoomVersion) -> tuple[str, ...]:
    if room_version.event_format is EventFormat.V1:
        # v1/v2: [[event_id, {"sha256": ...}], ...]
        return tuple(ref[0] for ref in refs)
    return tuple(refs)
