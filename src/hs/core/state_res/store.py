"""What state resolution needs from storage, and an in-memory implementation of it.

The algorithms in this package are I/O-free: they await only the methods of
``StateResolutionStore``, so a database-backed store can answer from indexes (an auth-chain
cover index, say) without the resolver ever loading a whole room.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from types import ModuleType
from typing import Protocol, runtime_checkable

from hs.core.pdu import PDU

__all__ = [
    "AuthChainStore",
    "ConflictedSubgraphStore",
    "InMemoryStateResolutionStore",
    "StateResolutionStore",
]


class StateResolutionStore(Protocol):
    """Storage as seen by state resolution (v1 only uses ``get_events``)."""

    async def get_events(self, event_ids: Collection[str]) -> dict[str, PDU]:
        """The events among ``event_ids`` that the store has (unknown IDs are left out).

        Rejected events are returned too, with ``rejected_reason`` set: the algorithm
        decides how to treat them (rooms/v2.md, "Rejected events").
        """
        ...

    async def get_auth_chain_difference(
        self, room_id: str, state_sets: Sequence[Collection[str]]
    ) -> set[str]:
        """``union(C_i) - intersection(C_i)``, where ``C_i`` is the event IDs of state set
        *i* together with all their auth chains (rooms/v2.md, "Auth difference").

        A state set may be any collection of IDs (the resolver passes the ``values()``
        views of its state maps, so an ID may repeat); implementations must not mutate
        them."""
        ...


@runtime_checkable
class ConflictedSubgraphStore(Protocol):
    """Optional extra for v2.1: a store that can compute the conflicted state subgraph
    itself (e.g. from an index). Without it the resolver walks auth events via
    ``get_events``."""

    async def get_conflicted_subgraph(self, room_id: str, conflicted: set[str]) -> set[str]:
        """Events on an ``auth_events`` path between two events of ``conflicted``
        (rooms/v12.md, "Conflicted state subgraph")."""
        ...


@runtime_checkable
class AuthChainStore(Protocol):
    """Optional extra: a store that can list auth chains itself (e.g. from an auth-chain
    index). Without it the resolver walks ``auth_events`` level by level via
    ``get_events``."""

    async def get_auth_chain(self, room_id: str, event_ids: Collection[str]) -> set[str]:
        """The union of the auth chains of ``event_ids`` (the events themselves only if one
        is an ancestor of another); an event the store lacks ends its branch but is
        included when cited."""
        ...


def _sorts_module(sorts: ModuleType | None) -> ModuleType:
    if sorts is not None:
        return sorts
    from hs._native import state_sort

    return state_sort


class InMemoryStateResolutionStore:
    """A ``StateResolutionStore`` over events held in a dict (tests, benchmarks, tools).

    Auth-chain walks run on an ``AuthGraph`` from the chosen ``_state_sort`` twin (the
    selector's choice unless ``sorts`` names one), built as events are added.
    """

    def __init__(self, events: Iterable[PDU] = (), *, sorts: ModuleType | None = None) -> None:
        self._sorts = _sorts_module(sorts)
        self.events: dict[str, PDU] = {}
        self.graph = self._sorts.AuthGraph()
        self.add(*events)

    def add(self, *events: PDU) -> None:
        """Store events (a re-added ID keeps its first version)."""
        for event in events:
            if event.event_id not in self.events:
                self.events[event.event_id] = event
                self.graph.add_event(event.event_id, event.auth_event_ids())

    async def get_events(self, event_ids: Collection[str]) -> dict[str, PDU]:
        events = self.events
        return {e: events[e] for e in event_ids if e in events}

    async def get_auth_chain_difference(
        self, room_id: str, state_sets: Sequence[Collection[str]]
    ) -> set[str]:
        result: set[str] = self.graph.auth_chain_difference(state_sets)
        return result

    async def get_conflicted_subgraph(self, room_id: str, conflicted: set[str]) -> set[str]:
        result: set[str] = self.graph.conflicted_subgraph(conflicted)
        return result

    async def get_auth_chain(self, room_id: str, event_ids: Collection[str]) -> set[str]:
        result: set[str] = self.graph.auth_chain(event_ids)
        return result
