"""State groups: room states as delta chains with periodic snapshots (see ``store.py``)."""

from hs.storage.state.store import (
    DEFAULT_SNAPSHOT_INTERVAL,
    NewGroup,
    StateStore,
    UnknownStateGroupError,
    diff_state,
    filter_state,
)

__all__ = [
    "DEFAULT_SNAPSHOT_INTERVAL",
    "NewGroup",
    "StateStore",
    "UnknownStateGroupError",
    "diff_state",
    "filter_state",
]
