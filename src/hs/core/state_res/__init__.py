"""State resolution: merging the room states of forked DAG branches into one.

``resolve_state`` picks the algorithm the room version names (v1, v2, or v2.1 for v12) and
awaits only a ``StateResolutionStore``; the graph loops run in ``hs._native.state_sort``
(Cython, or its pure twin), the auth rules in ``hs.core.auth``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType

from hs.core.pdu import StateKey
from hs.core.room_versions import RoomVersion, StateResAlgorithm
from hs.core.state_res.store import (
    AuthChainStore,
    ConflictedSubgraphStore,
    InMemoryStateResolutionStore,
    StateResolutionStore,
)
from hs.core.state_res.v1 import resolve_v1
from hs.core.state_res.v2 import resolve_v2

__all__ = [
    "AuthChainStore",
    "ConflictedSubgraphStore",
    "InMemoryStateResolutionStore",
    "StateResolutionStore",
    "resolve_state",
]


async def resolve_state(
    room_id: str,
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: StateResolutionStore,
    *,
    sorts: ModuleType | None = None,
) -> dict[StateKey, str]:
    """The resolved state (key -> event ID) of ``state_sets`` in ``room_id``.

    ``sorts`` forces one twin of ``hs._native._state_sort`` (tests and benchmarks compare
    them); by default the selector's choice is used.
    """
    if sorts is None:
        from hs._native import state_sort

        sorts = state_sort
    if room_version.state_res is StateResAlgorithm.V1:
        return await resolve_v1(room_id, room_version, state_sets, store, sorts)
    return await resolve_v2(room_id, room_version, state_sets, store, sorts)
