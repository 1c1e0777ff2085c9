"""Rooms, current state, membership history, aliases and the room directory."""

from hs.storage.rooms.store import MEMBER, RoomRow, RoomsStore, StateDeltaRow

__all__ = ["MEMBER", "RoomRow", "RoomsStore", "StateDeltaRow"]
