"""Read-only queries behind the room directory and room-membership checks of ephemeral
endpoints. No tables of its own: it reads the ``rooms`` area (rooms, current_state,
room_aliases) and the ``events`` area, so it is not a storage area."""

from hs.storage.directory.store import DirectoryQueries, PageKey, SummaryEvent

__all__ = ["DirectoryQueries", "PageKey", "SummaryEvent"]
