"""``POST /rooms/{roomId}/upgrade`` (client-server "Room Upgrades", server behaviour 1-6).

The replacement room is created like any room (``creation.build_room``, one batch) with
``predecessor`` (and the old ``type``) in its create event and the recommended state
copied; local aliases move to it; the old room gets an ``m.room.tombstone`` and power
levels that stop ordinary members from sending or inviting.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from hs.core.auth import identifiers as ids
from hs.core.power_levels import get_event_power_level, get_user_power_level, parse_power_level
from hs.core.room_versions import KNOWN_ROOM_VERSIONS
from hs.handlers.rooms.creation import RoomPlan, build_room, unsupported_version
from hs.handlers.rooms.pipeline import CREATE, POWER_LEVELS, Draft
from hs.handlers.rooms.validation import check_power_levels_content
from hs.http.errors import MatrixError, bad_json, forbidden

if TYPE_CHECKING:
    from hs.handlers.auth import Requester
    from hs.handlers.rooms.service import RoomHandler

logger = logging.getLogger(__name__)

#: The spec's recommended transferable state, plus the canonical alias (its aliases move).
TRANSFERRED = ("m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar",
               "m.room.topic", "m.room.guest_access", "m.room.history_visibility",
               "m.room.join_rules", "m.room.canonical_alias")


async def upgrade_room(handler: RoomHandler, requester: Requester, room_id: str,
                       new_version: str, additional_creators: list[str] | None) -> str:
    rv = KNOWN_ROOM_VERSIONS.get(new_version)
    if rv is None:
        raise unsupported_version(new_version)
    user_id = requester.user_id
    state = await handler.require_joined(room_id, user_id)
    old_pl = state.get(POWER_LEVELS)
    old_pl_content = dict(old_pl.content) if old_pl is not None else {}
    # 1. The upgrader must be allowed to send m.room.tombstone in the old room.
    needed = get_event_power_level("m.room.tombstone", "", old_pl_content if old_pl else None)
    level = get_user_power_level(user_id, state)
    if level < needed:
        raise forbidden("You don't have permission to upgrade this room")
    old_create = state[CREATE]
    creators = [u for u in dict.fromkeys(additional_creators or []) if u != user_id]
    if not all(ids.is_valid_user_id(u) for u in creators):
        raise bad_json("'additional_creators' must be a list of user IDs")
    # 2. The create event names its predecessor and keeps the room type.
    creation: dict[str, Any] = {"predecessor": {"room_id": room_id,
                                                "event_id": old_create.event_id}}
    if "type" in old_create.content:
        creation["type"] = old_create.content["type"]
    if rv.privileged_creators and creators:
        creation["additional_creators"] = creators
    # 3. Transferable state, read in one query.
    keys = [(t, "") for t in TRANSFERRED]
    old_state = await handler.current_state(room_id, keys)
    plan_state = [(k[0], "", dict(old_state[k].content)) for k in keys if k in old_state]
    plan_state = [_fit_join_rules(s, rv) for s in plan_state]
    power = dict(old_pl_content)
    users = dict(power.get("users") or {}) if isinstance(power.get("users"), dict) else {}
    final_power: dict[str, Any] | None = None
    if rv.privileged_creators:
        for creator in (user_id, *creators):
            users.pop(creator, None)
        power["users"] = users
        events = dict(power.get("events") or {})
        state_default = parse_power_level(power.get("state_default"))
        tomb = parse_power_level(events.get("m.room.tombstone"))
        floor = (50 if state_default is None else state_default) + 1
        if tomb is None or tomb < floor:
            events["m.room.tombstone"] = max(150, floor)
        power["events"] = events
    else:
        # The copy must let the upgrader send the rest of the state: raise them to the
        # highest level any event needs for now and restore the copy at the end.
        top = max([100, *(v for v in (parse_power_level(x) for x in (
            power.get("events") or {}).values()) if v is not None)])
        old_level = parse_power_level(users.get(user_id))
        if old_level is None and level == float("inf"):
            users[user_id] = old_level = 100  # a v12 creator keeps admin power
        if old_level is None or old_level < top:
            final_power = {**power, "users": dict(users)}
            users[user_id] = top
            power["users"] = users
    check_power_levels_content(power, rv, frozenset([user_id, *creators])
                               if rv.privileged_creators else frozenset())
    if final_power is not None:
        plan_state.append(("m.room.power_levels", "", final_power))
    room = await handler.events.rooms.get_room(room_id)
    plan = RoomPlan(rv, creation, power, state=plan_state,
                    public=room is not None and room.is_public)
    new_room_id = await build_room(handler, user_id, plan)
    # 4. Local aliases follow the room.
    for alias in await handler.events.rooms.get_aliases_for_room(room_id):
        creator = await handler.events.rooms.delete_alias(alias)
        if creator is not None:
            await handler.events.rooms.create_alias(alias, new_room_id, user_id)
    if plan.public:
        await handler.events.rooms.set_room_public(room_id, False)
    # 5. The tombstone.
    await handler.send_draft(room_id, Draft(
        "m.room.tombstone", user_id,
        {"body": "This room has been replaced", "replacement_room": new_room_id}, ""))
    # 6. Stop ordinary members from talking or inviting in the old room.
    await _restrict_old_room(handler, room_id, user_id, old_pl_content)
    return new_room_id


def _fit_join_rules(entry: tuple[str, str, dict[str, Any]], rv: Any
                    ) -> tuple[str, str, dict[str, Any]]:
    """A join rule the new version does not know becomes ``invite``."""
    etype, skey, content = entry
    if etype != "m.room.join_rules":
        return entry
    rule = content.get("join_rule")
    if ((rule == "knock" and not rv.knock)
            or (rule == "restricted" and not rv.restricted_join_rule)
            or (rule == "knock_restricted" and not rv.knock_restricted_join_rule)):
        return etype, skey, {"join_rule": "invite"}
    return entry


async def _restrict_old_room(handler: RoomHandler, room_id: str, user_id: str,
                             pl_content: dict[str, Any]) -> None:
    users_default = parse_power_level(pl_content.get("users_default")) or 0
    restricted = max(50, users_default + 1)
    changed = dict(pl_content)
    for key in ("events_default", "invite"):
        current = parse_power_level(changed.get(key))
        if current is None or current < restricted:
            changed[key] = restricted
    if changed == pl_content:
        return
    try:
        await handler.send_draft(room_id, Draft("m.room.power_levels", user_id, changed, ""))
    except MatrixError as exc:  # "if possible": the upgrader may lack the PL power
        logger.info("Not restricting power levels in %s: %s", room_id, exc.error)
