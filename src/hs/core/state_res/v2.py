"""State resolution v2 (rooms/v2.md) and v2.1 (rooms/v12.md "State resolution").

The two differ in exactly two places (rooms/v12.md, note at the top of "State
resolution"; MSC4297): v2.1 adds the *conflicted state subgraph* to the full conflicted
set, and its first iterative auth checks start from an *empty* state map instead of the
unconflicted state map. Everything else, including the final overwrite with the
unconflicted map (step 5), is shared.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType

from hs.core.pdu import StateKey
from hs.core.room_versions import RoomVersion, StateResAlgorithm
from hs.core.state_res._context import POWER_LEVELS, ResolutionContext
from hs.core.state_res.store import StateResolutionStore

__all__ = ["resolve_v2"]


async def resolve_v2(
    room_id: str,
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: StateResolutionStore,
    sorts: ModuleType,
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with v2, or v2.1 when the room version says so."""
    v2_1 = room_version.state_res is StateResAlgorithm.V2_1
    # Both dicts are fresh: the unconflicted one becomes the result (no 1000-key copy).
    unconflicted: dict[StateKey, str]
    conflicted: dict[StateKey, list[str]]
    unconflicted, conflicted = sorts.split_state(state_sets)
    if not conflicted:
        return unconflicted
    ctx = ResolutionContext(room_id, room_version, store, sorts)

    conflicted_ids: set[str] = sorts.conflicted_event_ids(conflicted)
    # The maps' values() views, not sets: the store walks them as they are (no copies).
    full = conflicted_ids | await store.get_auth_chain_difference(
        room_id, [s.values() for s in state_sets]
    )
    if v2_1:
        full |= await _conflicted_subgraph(ctx, conflicted_ids)

    await ctx.load(full)
    await ctx.load_create()
    events = ctx.events
    # Events the store does not have cannot take part; neither can message events.
    # Step 1: power events and the part of their auth chains inside the full conflicted set.
    power: list[str]
    full, power = sorts.select_power_events(full, events)
    chosen = set(power)
    chosen.update(await _auth_chain(ctx, power) & full)
    power_order = await _reverse_topological_power_order(ctx, chosen)

    # Step 2: iterative auth checks from the unconflicted map (v2) or from nothing (v2.1).
    # The state is kept as a read-only base plus the keys the checks set, so the (large)
    # unconflicted map is never copied key by key.
    base: Mapping[StateKey, str] = {} if v2_1 else unconflicted
    changes = await _iterative_auth_checks(ctx, power_order, base, {})

    # Step 3: everything else, in mainline order of the partial state's power levels.
    remaining = full - chosen
    pl_id = changes.get(POWER_LEVELS, base.get(POWER_LEVELS))
    others = await _mainline_order(ctx, remaining, pl_id)

    # Step 4: iterative auth checks from the partial state.
    changes = await _iterative_auth_checks(ctx, others, base, changes)

    # Step 5: the unconflicted state map wins wherever it has the key.
    resolved = unconflicted
    for key, event_id in changes.items():
        if key not in resolved:
            resolved[key] = event_id
    return resolved


async def _auth_chain(ctx: ResolutionContext, event_ids: list[str]) -> set[str]:
    """The union of the auth chains of ``event_ids``: from the store when it can answer
    (an index), else by walking ``auth_events`` through ``get_events``."""
    helper = getattr(ctx.store, "get_auth_chain", None)
    if helper is not None:
        from_store: set[str] = await helper(ctx.room_id, event_ids)
        return from_store
    graph = ctx.sorts.AuthGraph()
    await ctx.load_auth_chains(event_ids, graph)
    result: set[str] = graph.auth_chain(event_ids)
    return result


async def _conflicted_subgraph(ctx: ResolutionContext, conflicted: set[str]) -> set[str]:
    # getattr, not isinstance: a runtime Protocol check costs more than the whole walk.
    helper = getattr(ctx.store, "get_conflicted_subgraph", None)
    if helper is not None:
        from_store: set[str] = await helper(ctx.room_id, conflicted)
        return from_store
    graph = ctx.sorts.AuthGraph()
    await ctx.load_auth_chains(conflicted, graph)
    result: set[str] = graph.conflicted_subgraph(conflicted)
    return result


async def _reverse_topological_power_order(
    ctx: ResolutionContext, event_ids: set[str]
) -> list[str]:
    """Sort by rooms/v2.md "Reverse topological power ordering".

    The DAG is the direct ``auth_events`` edges among the events being sorted, as deployed
    servers build it. A sender's power is read from the event's own auth events (plus the
    create event in v12, whose creators have infinite power).
    """
    events = ctx.events
    await ctx.load(a for e in event_ids for a in events[e].auth_event_ids())
    edges, power, origin_ts = ctx.sorts.power_sort_inputs(
        event_ids, events, ctx.create_event(), ctx.cited, ctx.levels
    )
    order: list[str] = ctx.sorts.reverse_topological_power_sort(event_ids, edges, power, origin_ts)
    return order


async def _iterative_auth_checks(
    ctx: ResolutionContext,
    event_ids: list[str],
    base: Mapping[StateKey, str],
    changes: dict[StateKey, str],
) -> dict[StateKey, str]:
    """rooms/v2.md "Iterative auth checks" on the state ``base`` overlaid by ``changes``;
    returns ``changes`` with the accepted events added.

    For each key the auth rules need, the event in the state is used; only if the state
    lacks the key does the event's own (non-rejected) auth event stand in. Rejected events
    being checked are handled like any other ("Rejected events").
    """
    events = ctx.events
    todo = [events[e] for e in event_ids]
    required = ctx.required_keys_of(todo)
    # Prefetch every cited auth event and every state event the checks may look at; an
    # ID still missing afterwards is one the store does not have.
    await ctx.load(ctx.sorts.auth_prefetch_ids(todo, required, base, changes))
    result: dict[StateKey, str] = ctx.sorts.iterative_auth_checks(
        todo, required, base, changes, events, ctx.create_event(), ctx.cited, ctx.allowed
    )
    return result


async def _pl_parents(ctx: ResolutionContext, start: set[str]) -> dict[str, str]:
    """``x -> the m.room.power_levels event among x's auth events`` along the chains from
    ``start``: what the mainline ordering needs, fetched one level at a time."""
    events = ctx.events
    parents: dict[str, str] = {}
    seen: set[str] = set()
    frontier = set(start)
    while frontier:
        seen |= frontier
        await ctx.load(frontier)
        await ctx.load(a for e in frontier if e in events for a in events[e].auth_event_ids())
        nxt: set[str] = set()
        for e in frontier:
            ev = events.get(e)
            if ev is None:
                continue
            for a in ev.auth_event_ids():
                auth = events.get(a)
                if auth is not None and auth.is_state() and auth.state_tuple == POWER_LEVELS:
                    parents[e] = a
                    if a not in seen:
                        nxt.add(a)
                    break
        frontier = nxt
    return parents


async def _mainline_order(
    ctx: ResolutionContext, event_ids: set[str], power_levels_id: str | None
) -> list[str]:
    """rooms/v2.md "Mainline ordering" of ``event_ids`` based on ``power_levels_id``."""
    if not event_ids:
        return []
    start = set(event_ids)
    if power_levels_id is not None:
        start.add(power_levels_id)
    parents = await _pl_parents(ctx, start)
    mainline: list[str] = []
    on_mainline: set[str] = set()
    p = power_levels_id
    while p is not None and p not in on_mainline:  # a cycle ends the walk
        mainline.append(p)
        on_mainline.add(p)
        p = parents.get(p)
    events = ctx.events
    origin_ts = {e: events[e].origin_server_ts for e in event_ids}
    order: list[str] = ctx.sorts.mainline_sort(event_ids, mainline, parents, origin_ts)
    return order
