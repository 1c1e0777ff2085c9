"""State resolution v1 (rooms/v1.md "State resolution"), for room version 1.

Known to reset state in some forks (the spec's warning); kept only so v1 rooms resolve
the way their other servers do.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from types import ModuleType

from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import RoomVersion
from hs.core.state_res._context import JOIN_RULES, MEMBER, POWER_LEVELS, ResolutionContext
from hs.core.state_res.store import StateResolutionStore

__all__ = ["resolve_v1"]


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()


async def resolve_v1(
    room_id: str,
    room_version: RoomVersion,
    state_sets: Sequence[Mapping[StateKey, str]],
    store: StateResolutionStore,
    sorts: ModuleType,
) -> dict[StateKey, str]:
    """Resolve ``state_sets`` with the v1 algorithm.

    A *conflict* is a key with different event IDs in different states; a key that only
    some states have is not one (rooms/v1.md), so R starts as the union of the rest.
    """
    unconflicted, conflicted = sorts.split_state(state_sets, False)
    resolved: dict[StateKey, str] = dict(unconflicted)
    if not conflicted:
        return resolved
    ctx = ResolutionContext(room_id, room_version, store, sorts)
    await ctx.load(e for ids in conflicted.values() for e in ids)
    await ctx.load(resolved.values())
    events = ctx.events

    def candidates(key: StateKey) -> list[PDU]:
        return [events[e] for e in conflicted[key] if e in events]

    # Power levels, then join rules, then each member key: the first of the list sorted by
    # ascending depth then *descending* sha1(event_id) is taken as is; each later one must
    # pass auth against R, and the first failure ends that key's pass.
    auth_keys = [k for k in (POWER_LEVELS, JOIN_RULES) if k in conflicted]
    auth_keys += sorted(k for k in conflicted if k[0] == MEMBER)
    for key in auth_keys:
        ordered = sorted(candidates(key), key=lambda ev: _sha1(ev.event_id), reverse=True)
        ordered.sort(key=lambda ev: ev.depth)  # stable: depth asc, then sha1 desc
        if not ordered:
            continue
        resolved[key] = ordered[0].event_id
        for ev in ordered[1:]:
            if not await _allowed_in(ctx, ev, resolved):
                break
            resolved[key] = ev.event_id

    # Everything else: the highest depth, then lowest sha1, among those that pass auth in
    # R. The spec does not say what happens when none passes; we keep the first in that
    # order rather than dropping the key, so state never loses an entry by resolution.
    for key in sorted(k for k in conflicted if k not in auth_keys):
        ordered = sorted(candidates(key), key=lambda ev: (-ev.depth, _sha1(ev.event_id)))
        if not ordered:
            continue
        choice = ordered[0]
        for ev in ordered:
            if await _allowed_in(ctx, ev, resolved):
                choice = ev
                break
        resolved[key] = choice.event_id
    return resolved


async def _allowed_in(ctx: ResolutionContext, event: PDU, state: Mapping[StateKey, str]) -> bool:
    """Would ``event`` pass the auth rules in a room whose state is ``state``?"""
    keys = [k for k in ctx.required_keys(event) if k in state]
    await ctx.load(state[k] for k in keys)
    events = ctx.events
    auth_events = {k: events[state[k]] for k in keys if state[k] in events}
    return ctx.is_allowed(event, auth_events)
