"""Pure-Python twin of ``_state_sort_c``: the graph work of state resolution.

State resolution (spec, rooms/v2.md "State resolution") spends its time in a few loops that
need nothing but strings and integers once the events are loaded: splitting the state sets,
walking auth chains, the Kahn sort with the power tie-break and the mainline ordering. They
live here so the Cython twin can run them at C speed; ``hs.core.state_res`` keeps the parts
that need PDUs and the auth rules.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Hashable, Iterable, Mapping, MutableMapping, Sequence
from typing import Any

from hs._native import _auth_rules_py as auth_rules  # the twins paired with this one
from hs._native import _power_levels_py as power_levels
from hs._native._errors import StateSortError

__all__ = [
    "AuthGraph",
    "auth_prefetch_ids",
    "auth_rules",
    "cited_state",
    "conflicted_event_ids",
    "iterative_auth_checks",
    "mainline_sort",
    "power_levels",
    "power_sort_inputs",
    "reverse_topological_power_sort",
    "select_power_events",
    "split_state",
]

CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")


def _check_id(event_id: object) -> str:
    if type(event_id) is not str:
        raise TypeError(f"event IDs must be str, not {type(event_id).__name__}")
    return event_id


def split_state(
    state_sets: Sequence[Mapping[Hashable, str]], missing_is_conflict: bool = True
) -> tuple[dict[Hashable, str], dict[Hashable, list[str]]]:
    """Split state maps into the unconflicted map and the conflicted events per key.

    v2 (rooms/v2.md): a key is unconflicted only if *every* map has it with the same value,
    so ``missing_is_conflict`` is true. v1 only calls differing event IDs a conflict, so a
    key that some maps lack is unconflicted there. Conflicted IDs come back sorted; keys
    keep their order of first appearance. A ``None`` value counts as absent.
    """
    sets = [s if type(s) is dict else dict(s) for s in state_sets]
    unconflicted: dict[Hashable, str] = {}
    conflicted: dict[Hashable, list[str]] = {}
    n = len(sets)
    for state in sets:
        for key in state:
            if key in unconflicted or key in conflicted:
                continue
            values: list[str] = []
            present = 0
            for other in sets:
                value = other.get(key)
                if value is None:
                    continue
                present += 1
                if value not in values:
                    values.append(_check_id(value))
            if len(values) == 1 and (present == n or not missing_is_conflict):
                unconflicted[key] = values[0]
            else:
                values.sort()
                conflicted[key] = values
    return unconflicted, conflicted


class AuthGraph:
    """The auth-event DAG of some events, for chain walks without loading PDUs again.

    An ID that is referenced but never added is a leaf: walks include it and stop there.
    """

    __slots__ = ("_edges",)

    def __init__(self) -> None:
        self._edges: dict[str, tuple[str, ...]] = {}

    def add_event(self, event_id: str, auth_event_ids: Iterable[str]) -> None:
        """Record an event's ``auth_events``; a second call for the same ID is ignored."""
        _check_id(event_id)
        edges = tuple(_check_id(a) for a in auth_event_ids)
        if event_id not in self._edges:
            self._edges[event_id] = edges

    def __contains__(self, event_id: object) -> bool:
        return type(event_id) is str and event_id in self._edges

    def __len__(self) -> int:
        return len(self._edges)

    def auth_event_ids(self, event_id: str) -> tuple[str, ...]:
        """The recorded auth events of ``event_id`` (empty for an unknown event)."""
        return self._edges.get(event_id, ())

    def missing(self, event_ids: Iterable[str]) -> list[str]:
        """The IDs among ``event_ids`` and their known auth chains that were never added.

        A store uses this to learn which events to fetch next while growing the graph.
        """
        out: list[str] = []
        seen: set[str] = set()
        stack = [_check_id(e) for e in event_ids]
        while stack:
            e = stack.pop()
            if e in seen:
                continue
            seen.add(e)
            edges = self._edges.get(e)
            if edges is None:
                out.append(e)
            else:
                stack.extend(edges)
        out.sort()
        return out

    def _closure(self, start: Iterable[str], include_start: bool) -> set[str]:
        seen: set[str] = set()
        stack: list[str] = []
        for e in start:
            _check_id(e)
            if include_start:
                stack.append(e)
            else:
                stack.extend(self._edges.get(e, ()))
        edges = self._edges
        while stack:
            e = stack.pop()
            if e not in seen:
                seen.add(e)
                stack.extend(edges.get(e, ()))
        return seen

    def auth_chain(self, event_ids: Iterable[str]) -> set[str]:
        """The union of the auth chains of ``event_ids`` (the events themselves only if
        one is an ancestor of another)."""
        return self._closure(event_ids, include_start=False)

    def auth_chain_difference(self, state_sets: Sequence[Iterable[str]]) -> set[str]:
        """``union(C_i) - intersection(C_i)``; ``C_i`` is state set *i* plus its auth chain.

        The state events themselves count as part of their set's chain (as deployed servers
        do): an event present in every set is then never "different" merely because no event
        of some set cites it. The closure of the events common to every set lies in every
        ``C_i``, so it is walked once and the per-set walks stop where they reach it.
        """
        sets = [s if isinstance(s, set | frozenset) else set(s) for s in state_sets]
        if not sets:
            return set()
        common = sets[0].intersection(*sets[1:])
        in_all = self._closure(common, include_start=True)
        edges = self._edges
        counts: dict[str, int] = {}
        for state in sets:
            seen: set[str] = set()
            stack = [_check_id(e) for e in state - common]
            while stack:
                e = stack.pop()
                if e in seen or e in in_all:
                    continue
                seen.add(e)
                stack.extend(edges.get(e, ()))
            for e in seen:
                counts[e] = counts.get(e, 0) + 1
        n = len(sets)
        return {e for e, c in counts.items() if c < n}

    def add_loaded(self, event_ids: Iterable[str], events: Mapping[str, Any]) -> set[str]:
        """Record the auth events of those of ``event_ids`` that ``events`` holds (PDUs);
        return every ID they cite (the next level of an auth-chain walk)."""
        cited: set[str] = set()
        for e in event_ids:
            ev = events.get(e)
            if ev is None:
                continue
            auth_ids = ev.auth_event_ids()
            self.add_event(e, auth_ids)
            cited.update(auth_ids)
        return cited

    def conflicted_subgraph(self, conflicted: Iterable[str]) -> set[str]:
        """Events on an auth path between two conflicted events, endpoints included.

        rooms/v12.md, "Conflicted state subgraph": ``x`` qualifies when some conflicted
        event reaches ``x`` through ``auth_events`` and ``x`` reaches some conflicted event.
        The second half is a walk over reversed edges from the conflicted events, confined
        to the first half (every node of such a path lies in it).
        """
        targets = {_check_id(e) for e in conflicted}
        below = self._closure(targets, include_start=True)
        cited_by: dict[str, list[str]] = {}
        edges = self._edges
        for x in below:
            for a in edges.get(x, ()):
                cited_by.setdefault(a, []).append(x)
        result: set[str] = set()
        stack = list(targets)
        while stack:
            x = stack.pop()
            if x not in result:
                result.add(x)
                stack.extend(cited_by.get(x, ()))
        return result


def reverse_topological_power_sort(
    event_ids: Iterable[str],
    auth_edges: Mapping[str, Sequence[str]],
    power: Mapping[str, int | float],
    origin_ts: Mapping[str, int],
) -> list[str]:
    """Kahn's algorithm over the auth DAG restricted to ``event_ids``, earliest first.

    Among the ready events the smallest by (-sender power, origin_server_ts, event_id) goes
    next (rooms/v2.md, "Reverse topological power ordering"). Raises ``StateSortError`` on a
    cycle and ``KeyError`` when an event lacks a power or timestamp.
    """
    ids = sorted({_check_id(e) for e in event_ids})
    # Every key up front, so a missing power/ts fails the same way in both twins.
    keys = {e: (-power[e], origin_ts[e], e) for e in ids}
    members = set(ids)
    # children[a]: events in the set that cite a; pending[x]: x's auth events not yet output.
    children: dict[str, list[str]] = {e: [] for e in ids}
    pending: dict[str, int] = {}
    for e in sorted(ids, key=keys.__getitem__):
        parents = {a for a in auth_edges.get(e, ()) if type(a) is str and a in members}
        pending[e] = len(parents)
        for a in parents:
            children[a].append(e)
    heap = [keys[e] for e in ids if pending[e] == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        e = heapq.heappop(heap)[2]
        out.append(e)
        for c in children[e]:
            pending[c] -= 1
            if pending[c] == 0:
                heapq.heappush(heap, keys[c])
    if len(out) != len(ids):
        raise StateSortError("the auth events of the events to sort contain a cycle")
    return out


def mainline_sort(
    event_ids: Iterable[str],
    mainline: Sequence[str],
    pl_parent: Mapping[str, str],
    origin_ts: Mapping[str, int],
) -> list[str]:
    """Order events by (-mainline position, origin_server_ts, event_id) (rooms/v2.md).

    ``mainline`` is ``[P0, P1, ...]``; ``pl_parent[x]`` is the ``m.room.power_levels`` event
    among x's auth events. An event's position is the mainline index of the first event
    on its power-levels chain *after itself*, or "infinity" (``len(mainline)``, sorting
    first) when the chain never meets the mainline.
    """
    index: dict[str, int] = {}
    for i, p in enumerate(mainline):
        index.setdefault(_check_id(p), i)
    infinity = len(mainline)
    # depth_of[x]: position found by walking from x *inclusive*.
    memo: dict[str, int] = {}
    limit = len(pl_parent) + 1

    def from_node(x: str) -> int:
        path: list[str] = []
        steps = 0
        pos = infinity
        node: str | None = x
        while node is not None:
            if node in memo:
                pos = memo[node]
                break
            if node in index:
                pos = index[node]
                break
            path.append(node)
            steps += 1
            if steps > limit:
                raise StateSortError("the power-levels auth chain contains a cycle")
            nxt = pl_parent.get(node)
            node = None if nxt is None else _check_id(nxt)
        for p in path:
            memo[p] = pos
        return pos

    keyed = []
    for e in {_check_id(e) for e in event_ids}:
        parent = pl_parent.get(e)
        pos = infinity if parent is None else from_node(_check_id(parent))
        keyed.append((-pos, origin_ts[e], e))
    keyed.sort()
    return [k[2] for k in keyed]


# ---- the resolver's per-event loops (rooms/v2.md) ----------------------------------------
#
# These read PDUs only through their public attributes (``event_id``, ``sender``,
# ``state_key``, ``type``, ``membership``, ``origin_server_ts``, ``rejected_reason``,
# ``state_tuple``, ``is_state()``, ``auth_event_ids()``); the auth rules themselves are
# passed in as a callable. ``events`` is the resolution's cache of loaded events.


def conflicted_event_ids(conflicted: Mapping[Any, Sequence[str]]) -> set[str]:
    """Every event ID of the conflicted state map."""
    ids: set[str] = set()
    for values in conflicted.values():
        ids.update(values)
    return ids


def _is_power_event(event: Any) -> bool:
    if not event.is_state():
        return False
    etype = event.type
    if etype == "m.room.power_levels" or etype == "m.room.join_rules":
        return True
    if etype == "m.room.member":
        return event.membership in ("leave", "ban") and event.sender != event.state_key
    return False


def select_power_events(
    full: Iterable[str], events: Mapping[str, Any]
) -> tuple[set[str], list[str]]:
    """The full conflicted set reduced to loaded state events, and its power events
    (rooms/v2.md "Power events": power levels, join rules, kicks and bans of others)."""
    state = {e for e in full if e in events and events[e].is_state()}
    power = [e for e in state if _is_power_event(events[e])]
    return state, power


def cited_state(
    event: Any, events: Mapping[str, Any], create: Any, cache: MutableMapping[str, Any]
) -> Mapping[tuple[str, str], Any]:
    """The event's own loaded auth events by key, plus ``create`` (the v12 create event,
    which events do not cite) when it is not None. Cached in ``cache`` once every auth
    event is loaded; do not mutate the result."""
    cached = cache.get(event.event_id)
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    cited: dict[tuple[str, str], Any] = {}
    if create is not None:
        cited[CREATE] = create
    complete = True
    for a in event.auth_event_ids():
        ev = events.get(a)
        if ev is None:
            complete = False
        elif ev.is_state():
            cited[ev.state_tuple] = ev
    if complete:
        cache[event.event_id] = cited
    return cited


def power_sort_inputs(
    event_ids: Iterable[str],
    events: Mapping[str, Any],
    create: Any,
    cache: MutableMapping[str, Any],
    levels: Any,
) -> tuple[dict[str, tuple[str, ...]], dict[str, int | float], dict[str, int]]:
    """``reverse_topological_power_sort``'s inputs: each event's auth events, its sender's
    power read from the event's cited state (``levels.user_level``) and its timestamp."""
    edges: dict[str, tuple[str, ...]] = {}
    power: dict[str, int | float] = {}
    origin_ts: dict[str, int] = {}
    for e in event_ids:
        ev = events[e]
        edges[e] = ev.auth_event_ids()
        cited = cited_state(ev, events, create, cache)
        power[e] = levels.user_level(ev.sender, cited.get(CREATE), cited.get(POWER_LEVELS))
        origin_ts[e] = ev.origin_server_ts
    return edges, power, origin_ts


def auth_prefetch_ids(
    todo: Sequence[Any],
    required: Sequence[Sequence[tuple[str, str]]],
    base: Mapping[tuple[str, str], str],
    changes: Mapping[tuple[str, str], str],
) -> set[str]:
    """What ``iterative_auth_checks`` may look at: every auth event the events cite and
    every state event (``changes`` over ``base``) at the keys they need."""
    wanted: set[str] = set()
    for ev, keys in zip(todo, required, strict=True):
        wanted.update(ev.auth_event_ids())
        for key in keys:
            sid = changes.get(key)
            if sid is None:
                sid = base.get(key)
            if sid is not None:
                wanted.add(sid)
    return wanted


def iterative_auth_checks(
    todo: Sequence[Any],
    required: Sequence[Sequence[tuple[str, str]]],
    base: Mapping[tuple[str, str], str],
    changes: dict[tuple[str, str], str],
    events: Mapping[str, Any],
    create: Any,
    cache: MutableMapping[str, Any],
    is_allowed: Callable[[Any, Mapping[tuple[str, str], Any]], bool],
) -> dict[tuple[str, str], str]:
    """rooms/v2.md "Iterative auth checks" of ``todo`` (``required[i]``: the state keys
    event *i*'s auth rules need) on ``base`` overlaid by ``changes``; accepted events are
    added to ``changes``, which is returned.

    For each key the event in the state is used when it is loaded; otherwise the event's
    own non-rejected auth event for that key stands in. ``create`` (v12) is always there.
    """
    for ev, keys in zip(todo, required, strict=True):
        auth_events: dict[tuple[str, str], Any] = {}
        if create is not None:
            auth_events[CREATE] = create
        for key in keys:
            sid = changes.get(key)
            if sid is None:
                sid = base.get(key)
            if sid is not None:
                found = events.get(sid)
                if found is not None:
                    auth_events[key] = found
                    continue
            fallback = cited_state(ev, events, create, cache).get(key)
            if fallback is not None and fallback.rejected_reason is None:
                auth_events[key] = fallback
        if is_allowed(ev, auth_events):
            changes[ev.state_tuple] = ev.event_id
    return changes
