"""Pure-Python twin of ``_dag_c``: extremities, auth chains, auth differences, subgraphs.

Everything here works on event IDs (``str``) and parent lists, never on storage. The walks
are *resumable*: a walk object says which IDs it needs next (``frontier()``), the caller
answers the whole frontier with one query (``feed()``), and so on until the frontier is
empty. That lets an async storage layer answer one breadth-first frontier per round-trip
without ever loading a whole room; ``auth_chain``/``auth_difference`` are the synchronous
drivers over a callable or a plain mapping.

Cycles (impossible for genuine events, whose IDs are hashes, but possible in forged or
corrupt input) do not need special casing: every result is defined as reachability, and
the visited sets make each walk terminate.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from hs._native._errors import MissingEventsError

__all__ = [
    "AuthChainWalk",
    "AuthDifferenceWalk",
    "ConflictedSubgraphWalk",
    "auth_chain",
    "auth_difference",
    "conflicted_subgraph",
    "update_forward_extremities",
]

Fetch = Callable[[list[str]], Mapping[str, Sequence[str]]] | Mapping[str, Sequence[str]]


def _check_id(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"event IDs must be str, not {type(value).__name__}")
    return value


def _parent_tuple(parents: Any) -> tuple[str, ...]:
    # A str is itself a sequence of str: refuse it rather than walk its characters.
    if isinstance(parents, (str, bytes, bytearray)):
        raise TypeError("parent IDs must be a sequence of str, not a single string")
    out: tuple[str, ...] = tuple(parents)
    for p in out:
        _check_id(p)
    return out


class _Walk:
    """Gathers the auth subgraph reachable from the seeds, one fetch round at a time.

    ``_reached`` holds the IDs reached over at least one edge (the auth chain, which
    excludes a seed unless another seed leads to it). A node is expanded once; nodes
    whose parents are not known yet wait in ``_outstanding`` for the next ``feed``.
    """

    __slots__ = ("_adj", "_missing", "_outstanding", "_queued", "_reached")

    def __init__(self, seeds: Iterable[str]) -> None:
        self._adj: dict[str, tuple[str, ...]] = {}
        self._queued: set[str] = set()
        self._reached: set[str] = set()
        self._missing: set[str] = set()
        self._outstanding: list[str] = []
        stack: list[str] = []
        for seed in seeds:
            _check_id(seed)
            if seed not in self._queued:
                self._queued.add(seed)
                stack.append(seed)
        self._drain(stack)

    def _drain(self, stack: list[str]) -> None:
        adj, reached, queued, missing = self._adj, self._reached, self._queued, self._missing
        waiting: list[str] = []
        while stack:
            node = stack.pop()
            parents = adj.get(node)
            if parents is None:
                if node not in missing:
                    waiting.append(node)
                continue
            for parent in parents:
                if parent not in reached:
                    reached.add(parent)
                    if parent not in queued:
                        queued.add(parent)
                        stack.append(parent)
        self._outstanding = waiting

    def frontier(self) -> list[str]:
        """The IDs whose auth events are needed next (empty once the walk is complete)."""
        return list(self._outstanding)

    @property
    def done(self) -> bool:
        return not self._outstanding

    @property
    def missing(self) -> frozenset[str]:
        """IDs that were asked for but not supplied: treated as having no auth events."""
        return frozenset(self._missing)

    def _store(self, event_id: object, parents: object) -> None:
        eid = _check_id(event_id)
        if eid not in self._adj and eid not in self._missing:
            self._adj[eid] = _parent_tuple(parents)

    def _finish_round(self) -> None:
        stack = self._outstanding
        for node in stack:
            if node not in self._adj:
                self._missing.add(node)
        self._outstanding = []
        self._drain(stack)

    def feed(self, auth_events: Mapping[str, Sequence[str]]) -> None:
        """Answer the frontier: ``auth_events`` maps event ID -> its auth event IDs.

        Frontier IDs absent from the mapping become ``missing``. Extra entries (say, a
        storage layer that returned a whole chain from one recursive query) are kept and
        save later rounds; an ID's first answer wins.
        """
        if not isinstance(auth_events, Mapping):
            raise TypeError(f"feed() needs a Mapping, not {type(auth_events).__name__}")
        for event_id, parents in auth_events.items():
            self._store(event_id, parents)
        self._finish_round()

    def _feed_from(self, graph: Mapping[str, Sequence[str]]) -> None:
        # Driver fast path: look the frontier up in a whole-graph mapping.
        for node in self._outstanding:
            parents = graph.get(node)
            if parents is not None:
                self._store(node, parents)
        self._finish_round()

    def _closure(self, seeds: Iterable[str]) -> set[str]:
        """IDs reachable over >= 1 edge from ``seeds`` in the gathered graph."""
        adj = self._adj
        reached: set[str] = set()
        expanded: set[str] = set()
        stack: list[str] = []
        for seed in seeds:
            if seed not in expanded:
                expanded.add(seed)
                stack.append(seed)
        while stack:
            for parent in adj.get(stack.pop(), ()):
                if parent not in reached:
                    reached.add(parent)
                    if parent not in expanded:
                        expanded.add(parent)
                        stack.append(parent)
        return reached


class AuthChainWalk(_Walk):
    """Step-wise auth chain of a set of events (spec: rooms/v2 "Auth chain").

    ``while walk.frontier(): walk.feed(await fetch(walk.frontier()))``, then ``result()``.
    """

    __slots__ = ()

    def result(self) -> set[str]:
        """The union of the auth chains of the seeds (missing IDs included: they are
        referenced, just not known)."""
        return set(self._reached)


class AuthDifferenceWalk(_Walk):
    """Step-wise auth difference of several state sets (spec: rooms/v2 "Auth difference").

    The walk fetches the union of the chains once; ``result()`` then works out which
    events are in some but not all of the per-set chains from the gathered graph.

    ``include_state_sets``: whether ``C_i`` counts the events of ``S_i`` themselves. The
    spec's words ("the union of the auth chains for each event in S_i") leave them out
    unless reachable; Synapse, and so most of the federation, counts them in, and the two
    differ only by unconflicted events (in every set) reachable from some sets' events
    but not all. The default follows the deployed behaviour so resolutions converge.
    """

    __slots__ = ("_include", "_sets")

    def __init__(
        self, state_sets: Iterable[Iterable[str]], include_state_sets: bool = True
    ) -> None:
        sets: list[list[str]] = []
        for state_set in state_sets:
            if isinstance(state_set, (str, bytes, bytearray)):
                raise TypeError("each state set must be a collection of event IDs")
            sets.append([_check_id(e) for e in state_set])
        self._sets = sets
        self._include = bool(include_state_sets)
        super().__init__(e for s in sets for e in s)

    def result(self) -> set[str]:
        """``union(C_i) - intersection(C_i)`` over the full auth chains ``C_i``."""
        if len(self._sets) < 2:
            return set()
        chains = [self._closure(s) for s in self._sets]
        if self._include:
            for chain, seeds in zip(chains, self._sets, strict=True):
                chain.update(seeds)
        union: set[str] = set().union(*chains)
        return union - chains[0].intersection(*chains[1:])


class ConflictedSubgraphWalk(_Walk):
    """Step-wise conflicted state subgraph (spec: rooms/v12 "Conflicted state subgraph").

    The events on an ``auth_events`` path (of >= 1 edge) from one conflicted event to
    another, endpoints included. Every such path lies inside the auth chain of the
    conflicted set, so the walk gathers just that chain, as ``AuthChainWalk`` does.
    """

    __slots__ = ("_conflicted",)

    def __init__(self, conflicted: Iterable[str]) -> None:
        ids = [_check_id(e) for e in conflicted]
        self._conflicted = ids
        super().__init__(ids)

    def result(self) -> set[str]:
        """``{v: c1 ->+ v ->* c2}`` plus the ``c1`` that start such a path."""
        adj, conflicted = self._adj, self._conflicted
        children: dict[str, list[str]] = {}
        for node in self._queued:
            for parent in adj.get(node, ()):
                children.setdefault(parent, []).append(node)
        # Nodes from which a conflicted event is reachable over >= 0 edges.
        upstream = set(conflicted)
        stack = list(upstream)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in upstream:
                    upstream.add(child)
                    stack.append(child)
        out = self._reached & upstream
        for start in conflicted:
            if any(p in upstream for p in adj.get(start, ())):
                out.add(start)
        return out


def _drive(walk: _Walk, fetch: Fetch, allow_missing: bool) -> None:
    if isinstance(fetch, Mapping):
        while walk._outstanding:
            walk._feed_from(fetch)
    elif callable(fetch):
        while walk._outstanding:
            walk.feed(fetch(walk.frontier()))
    else:
        raise TypeError("fetch must be a Mapping or a callable")
    if walk._missing and not allow_missing:
        raise MissingEventsError(sorted(walk._missing))


def auth_chain(event_ids: Iterable[str], fetch: Fetch, allow_missing: bool = False) -> set[str]:
    """The auth chain of ``event_ids``; ``fetch`` answers one frontier per call."""
    walk = AuthChainWalk(event_ids)
    _drive(walk, fetch, allow_missing)
    return walk.result()


def auth_difference(
    state_sets: Iterable[Iterable[str]],
    fetch: Fetch,
    allow_missing: bool = False,
    include_state_sets: bool = True,
) -> set[str]:
    """The auth difference of ``state_sets`` (each an iterable of event IDs)."""
    walk = AuthDifferenceWalk(state_sets, include_state_sets)
    _drive(walk, fetch, allow_missing)
    return walk.result()


def conflicted_subgraph(
    conflicted: Iterable[str], fetch: Fetch, allow_missing: bool = False
) -> set[str]:
    """The conflicted state subgraph of ``conflicted`` (room v12 state resolution)."""
    walk = ConflictedSubgraphWalk(conflicted)
    _drive(walk, fetch, allow_missing)
    return walk.result()


def _unpack(item: Any) -> tuple[str, Sequence[str], bool]:
    if not isinstance(item, (tuple, list)):
        raise TypeError("new events must be (event_id, prev_event_ids[, excluded]) tuples")
    n = len(item)
    if n == 2:
        return _check_id(item[0]), item[1], False
    if n == 3:
        return _check_id(item[0]), item[1], bool(item[2])
    raise TypeError("new events must be (event_id, prev_event_ids[, excluded]) tuples")


def update_forward_extremities(
    current: Iterable[str],
    new_events: Iterable[Any],
    referenced: Callable[[list[str]], Iterable[str]] | Collection[str],
) -> set[str]:
    """The forward extremities after persisting ``new_events``.

    ``new_events``: ``(event_id, prev_event_ids, excluded)`` items (``excluded`` optional).
    Excluded events (outliers, rejected, soft-failed: spec server-server "Soft failure")
    never become extremities and do not retire their prev events. ``referenced`` says which
    of the candidate IDs some already-stored, non-excluded event lists as a prev event:
    called once with the candidates, or a precomputed collection.
    """
    extremities = {_check_id(e) for e in current}
    eligible: dict[str, None] = {}
    batch_refs: set[str] = set()
    excluded: set[str] = set()
    for item in new_events:
        event_id, prevs, is_excluded = _unpack(item)
        if is_excluded:
            excluded.add(event_id)
            continue
        eligible[event_id] = None
        batch_refs.update(_parent_tuple(prevs))
    candidates = [e for e in eligible if e not in batch_refs and e not in excluded]
    if candidates:
        known = referenced(candidates) if callable(referenced) else referenced
        if isinstance(known, (str, bytes, bytearray)):
            raise TypeError("referenced must give a collection of event IDs")
        known_set = known if isinstance(known, (set, frozenset)) else set(known)
        extremities.update(e for e in candidates if e not in known_set)
    extremities -= batch_refs
    extremities -= excluded
    return extremities
