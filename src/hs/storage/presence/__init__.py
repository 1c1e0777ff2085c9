"""Presence rows on the ``presence`` stream."""

from hs.storage.presence.store import PresenceRow, PresenceStore

__all__ = ["PresenceRow", "PresenceStore"]
