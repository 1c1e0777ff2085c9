"""Room DAG helpers: forward extremities, auth chains and auth differences.

Pure and I/O-free: everything works on event IDs and parent-ID lists that the caller
supplies, so storage can feed the walks in batches without loading a whole room.

Public API:

* ``update_forward_extremities(current, new_events, referenced) -> ExtremityUpdate`` - the
  extremity set after persisting a batch, correct for out-of-order arrival. ``new_events``
  holds ``NewEvent(event_id, prev_event_ids, excluded)``; ``referenced`` answers "which of
  these IDs is already a prev event of a stored, non-excluded event?" (one call per batch,
  typically a single query on the edges table), or is that answer precomputed.
* ``auth_chain(event_ids, fetch)`` / ``auth_difference(state_sets, fetch)`` - synchronous
  walks (spec rooms/v2 "Auth chain" and "Auth difference"; by default a state set's own
  events count as part of its full auth chain, as Synapse computes it - see
  ``AuthDifferenceWalk`` - and ``include_state_sets=False`` gives the literal reading).
  ``fetch`` is either a mapping ``event_id -> auth_event_ids`` or a callable taking a
  *list* of IDs (one breadth-first frontier) and returning such a mapping for those it
  knows; IDs it omits are missing (``MissingEventsError`` unless ``allow_missing``).
* ``conflicted_subgraph(conflicted, fetch)`` - room v12's conflicted state subgraph: the
  events on auth paths between conflicted events (rooms/v12 "Conflicted state subgraph").
* ``auth_chain_async`` / ``auth_difference_async`` / ``conflicted_subgraph_async`` - the
  same, driven by an async fetch: one awaited query per frontier.
* ``AuthChainWalk`` / ``AuthDifferenceWalk`` / ``ConflictedSubgraphWalk`` - the resumable
  step API underneath: ``frontier()`` -> IDs to fetch, ``feed(mapping)``, repeat until
  ``done``; then ``result()``.
  ``feed`` also accepts more than was asked (e.g. a recursive query's whole chain).

Cycles of auth/prev events cannot occur in genuine rooms (IDs are hashes of content that
names the parents) but forged input may contain them: every result is defined as graph
reachability, so walks over cyclic input terminate with that well-defined answer.

The graph walks are compiled (``hs._native._dag_c``) when the extension is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from hs._native._errors import MissingEventsError
from hs.core.pdu import PDU

if TYPE_CHECKING:
    from hs._native._dag_py import AuthChainWalk, AuthDifferenceWalk, ConflictedSubgraphWalk
    from hs._native._dag_py import auth_chain as _auth_chain
    from hs._native._dag_py import auth_difference as _auth_difference
    from hs._native._dag_py import conflicted_subgraph as _conflicted_subgraph
    from hs._native._dag_py import update_forward_extremities as _update_extremities
else:
    from hs._native.dag import AuthChainWalk, AuthDifferenceWalk, ConflictedSubgraphWalk
    from hs._native.dag import auth_chain as _auth_chain
    from hs._native.dag import auth_difference as _auth_difference
    from hs._native.dag import conflicted_subgraph as _conflicted_subgraph
    from hs._native.dag import update_forward_extremities as _update_extremities

__all__ = [
    "AsyncAuthFetch",
    "AuthChainWalk",
    "AuthDifferenceWalk",
    "AuthFetch",
    "ConflictedSubgraphWalk",
    "ExtremityUpdate",
    "MissingEventsError",
    "NewEvent",
    "StateSet",
    "auth_chain",
    "auth_chain_async",
    "auth_difference",
    "auth_difference_async",
    "conflicted_subgraph",
    "conflicted_subgraph_async",
    "update_forward_extremities",
]

#: event_id -> auth (or prev) event IDs, for the IDs a fetch knows.
ParentMap = Mapping[str, Sequence[str]]
#: A whole-graph mapping, or a callable answering one frontier (a list of IDs) per call.
AuthFetch = ParentMap | Callable[[list[str]], ParentMap]
AsyncAuthFetch = Callable[[list[str]], Awaitable[ParentMap]]
#: A state set: event IDs, or a state map ``(type, state_key) -> event_id``.
StateSet = Iterable[str] | Mapping[tuple[str, str], str]


class NewEvent(NamedTuple):
    """One event of a batch being persisted, as the extremity update needs it.

    ``excluded``: outliers (not part of the DAG we hold), rejected events and soft-failed
    events (spec server-server "Soft failure": not added to the forward extremities). An
    excluded event never becomes an extremity and does not retire its prev events, and is
    dropped from the set if it was in it.
    """

    event_id: str
    prev_event_ids: Sequence[str]
    excluded: bool = False

    @classmethod
    def from_pdu(cls, pdu: PDU, *, outlier: bool = False, soft_failed: bool = False) -> NewEvent:
        excluded = outlier or soft_failed or pdu.rejected_reason is not None
        return cls(pdu.event_id, pdu.prev_event_ids(), excluded)


@dataclass(frozen=True, slots=True)
class ExtremityUpdate:
    """The new extremity set and the delta storage applies to its extremities table."""

    extremities: frozenset[str]
    added: frozenset[str]
    removed: frozenset[str]


def update_forward_extremities(
    current: Iterable[str],
    new_events: Iterable[NewEvent | tuple[str, Sequence[str]]],
    referenced: Callable[[list[str]], Iterable[str]] | Collection[str],
) -> ExtremityUpdate:
    """Forward extremities after persisting ``new_events`` (any arrival order).

    An extremity is a stored, non-excluded event that no stored, non-excluded event lists
    in ``prev_events``. So a new event is one unless another event of the batch, or an
    event already stored (``referenced``: the edges table, which must only hold edges of
    non-excluded events), points at it; and the batch's prev events stop being ones.
    ``referenced`` is called at most once, with only the IDs still in question.
    """
    before = frozenset(current)
    after = frozenset(_update_extremities(before, new_events, referenced))
    return ExtremityUpdate(after, after - before, before - after)


def _state_ids(state_sets: Iterable[StateSet]) -> list[Iterable[str]]:
    return [s.values() if isinstance(s, Mapping) else s for s in state_sets]


def auth_chain(event_ids: Iterable[str], fetch: AuthFetch, allow_missing: bool = False) -> set[str]:
    """Union of the auth chains of ``event_ids`` (an ID is included only if reachable)."""
    return _auth_chain(event_ids, fetch, allow_missing)


def auth_difference(
    state_sets: Iterable[StateSet],
    fetch: AuthFetch,
    allow_missing: bool = False,
    include_state_sets: bool = True,
) -> set[str]:
    """Auth difference: union minus intersection of the sets' full auth chains.

    ``include_state_sets`` (default, as deployed servers compute it): each set's own events
    count as part of its chain; False reads the spec literally (chains of the events only).
    The two differ only by unconflicted events, see ``AuthDifferenceWalk``.
    """
    return _auth_difference(_state_ids(state_sets), fetch, allow_missing, include_state_sets)


def conflicted_subgraph(
    conflicted: Iterable[str], fetch: AuthFetch, allow_missing: bool = False
) -> set[str]:
    """Events on an ``auth_events`` path between two conflicted events, endpoints included."""
    return _conflicted_subgraph(conflicted, fetch, allow_missing)


async def _drive_async(
    walk: AuthChainWalk | AuthDifferenceWalk | ConflictedSubgraphWalk,
    fetch: AsyncAuthFetch,
    allow_missing: bool,
) -> None:
    while not walk.done:
        walk.feed(await fetch(walk.frontier()))
    if walk.missing and not allow_missing:
        raise MissingEventsError(sorted(walk.missing))


async def auth_chain_async(
    event_ids: Iterable[str], fetch: AsyncAuthFetch, allow_missing: bool = False
) -> set[str]:
    """``auth_chain`` with one awaited ``fetch(frontier)`` per breadth-first round."""
    walk = AuthChainWalk(event_ids)
    await _drive_async(walk, fetch, allow_missing)
    return walk.result()


async def auth_difference_async(
    state_sets: Iterable[StateSet],
    fetch: AsyncAuthFetch,
    allow_missing: bool = False,
    include_state_sets: bool = True,
) -> set[str]:
    """``auth_difference`` with one awaited ``fetch(frontier)`` per breadth-first round."""
    walk = AuthDifferenceWalk(_state_ids(state_sets), include_state_sets)
    await _drive_async(walk, fetch, allow_missing)
    return walk.result()


async def conflicted_subgraph_async(
    conflicted: Iterable[str], fetch: AsyncAuthFetch, allow_missing: bool = False
) -> set[str]:
    """``conflicted_subgraph`` with one awaited ``fetch(frontier)`` per round."""
    walk = ConflictedSubgraphWalk(conflicted)
    await _drive_async(walk, fetch, allow_missing)
    return walk.result()
