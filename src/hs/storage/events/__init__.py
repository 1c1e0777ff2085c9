"""Event storage: events, the room DAG, timelines, relations, redactions, txn IDs.

``EventsStore`` (``store.py``) is the entry point; it also exposes the state groups
(``hs.storage.state``) and rooms/current state/memberships (``hs.storage.rooms``) that the
same persistence transaction maintains. Exports are loaded lazily: the state and rooms
packages import this package's helper modules, and the store imports them back.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CurrentStateDeltas": "persist",
    "MissingStateError": "persist",
    "EventsStore": "store",
    "EventContext": "timeline",
    "InvalidTokenError": "tokens",
    "RoomToken": "tokens",
    **{
        name: "types"
        for name in (
            "EventFilter", "EventMeta", "EventToPersist", "Member", "Page", "PersistedEvent",
            "RoomForUser", "StateAfter", "StateBefore", "StateDelta", "StateMap",
            "ThreadSummary", "TxnKey",
        )
    },
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
