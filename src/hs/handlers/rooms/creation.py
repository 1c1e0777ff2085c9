"""``POST /createRoom``: the initial events, in the order the spec lists, as ONE batch.

Spec: client-server ``createRoom`` (data/api/client-server/create_room.yaml). Order:
create, the creator's join, power levels (with ``power_level_content_override``), the
canonical alias, the preset's join rules/history visibility/guest access, ``initial_state``,
name and topic, invites. Every event is authorized against the state the previous ones
built; a refusal aborts the whole creation with 400 ``M_INVALID_ROOM_STATE`` before
anything is stored. Room upgrades reuse ``build_room`` with a ``predecessor``.
"""

from __future__ import annotations

import logging
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hs.core.auth import identifiers as ids
from hs.core.events import compute_room_id
from hs.core.room_versions import KNOWN_ROOM_VERSIONS, RoomVersion
from hs.handlers.rooms.pipeline import ChainBuilder, Draft
from hs.handlers.rooms.validation import (
    check_content,
    check_field_sizes,
    check_power_levels_content,
)
from hs.http.errors import MatrixError, bad_json, invalid_param
from hs.storage.events.persist import StaleExtremitiesError

if TYPE_CHECKING:
    from hs.handlers.auth import Requester
    from hs.handlers.rooms.service import RoomHandler

logger = logging.getLogger(__name__)

#: preset -> (join_rule, history_visibility, guest_access)
PRESETS = {
    "private_chat": ("invite", "shared", "can_join"),
    "trusted_private_chat": ("invite", "shared", "can_join"),
    "public_chat": ("public", "shared", "forbidden"),
}
_ROOM_ID_ALPHABET = string.ascii_letters


@dataclass
class RoomPlan:
    """Everything ``build_room`` needs, already validated."""

    room_version: RoomVersion
    creation_content: dict[str, Any]
    power_levels: dict[str, Any]
    #: (type, state_key, content) after the creator's join and power levels, in order.
    state: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    invites: list[str] = field(default_factory=list)
    is_direct: bool = False
    alias: str | None = None
    public: bool = False


def unsupported_version(version: object) -> MatrixError:
    return MatrixError(400, "M_UNSUPPORTED_ROOM_VERSION",
                       f"Room version {version!r} is not supported by this server")


def default_power_levels(creator: str, rv: RoomVersion, extra_admins: list[str]
                         ) -> dict[str, Any]:
    """The levels a new room starts with (Synapse's defaults, which Element expects).

    v1-v11 list the creator (and trusted invitees) at 100; v12 creators have infinite
    power and must not be listed, and the tombstone level must exceed state_default.
    """
    users = {} if rv.privileged_creators else {u: 100 for u in [creator, *extra_admins]}
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": 50,
            "m.room.power_levels": 100,
            "m.room.history_visibility": 100,
            "m.room.canonical_alias": 50,
            "m.room.avatar": 50,
            "m.room.tombstone": 150 if rv.privileged_creators else 100,
            "m.room.server_acl": 100,
            "m.room.encryption": 100,
        },
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 50,
    }


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise bad_json(f"'{key}' must be a string")
    return value


def plan_from_request(handler: RoomHandler, creator: str, body: dict[str, Any]) -> RoomPlan:
    """Validate a createRoom body into a ``RoomPlan`` (400s for malformed input)."""
    version = body.get("room_version", handler.config.default_room_version)
    if not isinstance(version, str) or version not in KNOWN_ROOM_VERSIONS:
        raise unsupported_version(version)
    rv = KNOWN_ROOM_VERSIONS[version]
    visibility = body.get("visibility", "private")
    if visibility not in ("public", "private"):
        raise invalid_param("'visibility' must be 'public' or 'private'")
    preset = body.get("preset", "public_chat" if visibility == "public" else "private_chat")
    if preset not in PRESETS:
        raise invalid_param(f"Unknown preset {preset!r}")
    invites = body.get("invite", [])
    if not isinstance(invites, list) or not all(ids.is_valid_user_id(u) for u in invites):
        raise invalid_param("'invite' must be a list of user IDs")
    invites = [u for u in dict.fromkeys(invites) if u != creator]
    if body.get("invite_3pid"):
        raise MatrixError(400, "M_UNRECOGNIZED", "Third-party invites are not supported")
    is_direct = body.get("is_direct", False)
    if not isinstance(is_direct, bool):
        raise bad_json("'is_direct' must be a boolean")
    creation = body.get("creation_content", {})
    if not isinstance(creation, dict):
        raise bad_json("'creation_content' must be an object")
    creation = {k: v for k, v in creation.items() if k not in ("creator", "room_version")}
    trusted = preset == "trusted_private_chat"
    if rv.privileged_creators:
        extra = creation.get("additional_creators", [])
        if not isinstance(extra, list) or not all(ids.is_valid_user_id(u) for u in extra):
            raise bad_json("'additional_creators' must be a list of user IDs")
        # Spec: trusted_private_chat invitees become additional creators in v12.
        extra = list(dict.fromkeys([*extra, *(invites if trusted else [])]))
        extra = [u for u in extra if u != creator]
        if extra:
            creation["additional_creators"] = extra
        else:
            creation.pop("additional_creators", None)
    power = default_power_levels(creator, rv, invites if trusted else [])
    override = body.get("power_level_content_override")
    if override is not None:
        if not isinstance(override, dict):
            raise bad_json("'power_level_content_override' must be an object")
        power.update(override)
    join_rule, history, guest = PRESETS[preset]
    plan = RoomPlan(rv, creation, power, invites=invites, is_direct=is_direct,
                    public=visibility == "public")
    alias_name = _opt_str(body, "room_alias_name")
    if alias_name is not None:
        if not alias_name or any(c in alias_name for c in ":# \t\n"):
            raise invalid_param("Invalid characters in room alias")
        plan.alias = f"#{alias_name}:{handler.server_name}"
        check_field_sizes(alias=plan.alias)
        plan.state.append(("m.room.canonical_alias", "", {"alias": plan.alias}))
    initial = body.get("initial_state", [])
    if not isinstance(initial, list):
        raise bad_json("'initial_state' must be a list")
    overrides: list[tuple[str, str, dict[str, Any]]] = []
    for entry in initial:
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise bad_json("'initial_state' entries need a string 'type'")
        skey = entry.get("state_key", "")
        if not isinstance(skey, str):
            raise bad_json("'initial_state' state_key must be a string")
        content = entry.get("content")
        check_content(content)
        assert isinstance(content, dict)
        check_field_sizes(type=entry["type"], state_key=skey)
        if entry["type"] in ("m.room.create", "m.room.member"):
            raise bad_json(f"{entry['type']} may not be in 'initial_state'")
        if (entry["type"], skey) == ("m.room.power_levels", ""):
            power = {**content, **(override or {})}  # the override still wins
            continue
        overrides.append((entry["type"], skey, content))
    given = {(t, k) for t, k, _ in overrides}
    for etype, content in (("m.room.join_rules", {"join_rule": join_rule}),
                           ("m.room.history_visibility", {"history_visibility": history}),
                           ("m.room.guest_access", {"guest_access": guest})):
        if (etype, "") not in given:
            plan.state.append((etype, "", content))
    plan.state.extend(overrides)
    name = _opt_str(body, "name")
    if name is not None:
        plan.state.append(("m.room.name", "", {"name": name}))
    topic = _opt_str(body, "topic")
    if topic is not None:
        plan.state.append(("m.room.topic", "", {
            "topic": topic, "m.topic": {"m.text": [{"body": topic, "mimetype": "text/plain"}]}}))
    plan.power_levels = power
    creators = frozenset([creator, *creation.get("additional_creators", [])]) \
        if rv.privileged_creators else frozenset()
    check_content(power)
    check_power_levels_content(power, rv, creators)
    check_content(creation)
    return plan


async def create_room(handler: RoomHandler, requester: Requester, body: dict[str, Any]
                      ) -> tuple[str, str | None]:
    """``POST /createRoom``: returns (room_id, alias or None)."""
    handler.ratelimiters["rc_room_creation"].check(requester.user_id)
    plan = plan_from_request(handler, requester.user_id, body)
    room_id = await build_room(handler, requester.user_id, plan)
    return room_id, plan.alias


#: Room IDs tried before giving up (see ``build_room``).
_CREATE_ATTEMPTS = 5


class _CreateTimes:
    """Strictly increasing ``origin_server_ts`` for this process's create events: from
    room version 12 the room ID is the create event's reference hash, and a user creating
    two rooms with the same settings in the same millisecond would otherwise get one room
    twice (the Matrix test suite and busy bridges do exactly that)."""

    last = 0

    @classmethod
    def after(cls, now: int) -> int:
        cls.last = max(now, cls.last + 1)
        return cls.last


def _create_clock(clock: Callable[[], int]) -> Callable[[], int]:
    """``clock``, except that its first reading (the create event's) is unique."""
    first = True

    def tick() -> int:
        nonlocal first
        if first:
            first = False
            return _CreateTimes.after(clock())
        return clock()
    return tick


async def build_room(handler: RoomHandler, creator: str, plan: RoomPlan) -> str:
    """Build, authorize and persist the plan's events as one batch; returns the room ID.

    The batch is persisted only if its room has no events yet (expected forward
    extremities: none), so a room ID that is taken after all (another process's create
    event in the same millisecond, a random ID drawn twice) writes nothing and the room is
    built again under a new ID."""
    for invitee in plan.invites:
        if not handler.is_local(invitee):
            raise MatrixError(502, "M_UNKNOWN",
                              f"Cannot invite {invitee}: federation is not available")
    pipeline = handler.pipeline
    profile = await handler.accounts.get_profile(creator)
    drafts = _drafts(creator, plan, profile)
    for _ in range(_CREATE_ATTEMPTS):
        builder = _build_chain(handler, plan, drafts)
        room_id = builder.room_id
        assert room_id is not None
        if plan.alias is not None and not await handler.events.rooms.create_alias(
                plan.alias, room_id, creator):
            raise MatrixError(400, "M_ROOM_IN_USE",
                              f"Room alias {plan.alias} is already taken")
        try:
            await pipeline.persist(builder.accepted, room_id, expected_extremities=frozenset())
        except BaseException as exc:
            if plan.alias is not None:
                await handler.events.rooms.delete_alias(plan.alias)
            if isinstance(exc, StaleExtremitiesError):
                logger.warning("room ID %s is taken; building the room again", room_id)
                continue
            raise
        pipeline.remember_tip(room_id, builder, drafts)
        if plan.public:
            await handler.events.rooms.set_room_public(room_id, True)
        return room_id
    raise MatrixError(503, "M_UNKNOWN", "Could not find a free room ID; try again")


def _drafts(creator: str, plan: RoomPlan, profile: dict[str, Any]) -> list[Draft]:
    rv = plan.room_version
    create_content = dict(plan.creation_content)
    if not rv.implicit_room_creator:
        create_content["creator"] = creator
    create_content["room_version"] = rv.identifier
    drafts = [Draft("m.room.create", creator, create_content, "")]
    drafts.append(Draft("m.room.member", creator, member_content("join", profile), creator))
    drafts.append(Draft("m.room.power_levels", creator, plan.power_levels, ""))
    drafts += [Draft(t, creator, c, k) for t, k, c in plan.state]
    for invitee in plan.invites:
        content: dict[str, Any] = {"membership": "invite"}
        if plan.is_direct:
            content["is_direct"] = True
        drafts.append(Draft("m.room.member", creator, content, invitee))
    return drafts


def _build_chain(handler: RoomHandler, plan: RoomPlan, drafts: list[Draft]) -> ChainBuilder:
    """The room's events, built and authorized on a new room ID."""
    rv = plan.room_version
    builder = ChainBuilder(rv, None, handler.server_name, handler.pipeline.signing_key,
                           _create_clock(handler.clock), [], 0, {}, {}, {})
    if not rv.room_id_from_create_event:
        builder.room_id = "!" + "".join(
            secrets.choice(_ROOM_ID_ALPHABET) for _ in range(18)) + ":" + handler.server_name
    for draft in drafts:
        pdu = builder.build(draft)
        if builder.room_id is None:  # v12: the room ID is derived from the create event
            builder.room_id = compute_room_id(pdu.data, rv)
        try:
            builder.authorize(pdu)
        except MatrixError as exc:
            raise MatrixError(400, "M_INVALID_ROOM_STATE",
                              f"Cannot send {draft.type} while creating the room: {exc.error}"
                              ) from None
        builder.accept(pdu)
    return builder


def member_content(membership: str, profile: dict[str, Any],
                   reason: str | None = None) -> dict[str, Any]:
    """m.room.member content carrying the user's profile (what Element displays)."""
    content: dict[str, Any] = {"membership": membership}
    for key in ("displayname", "avatar_url"):
        if isinstance(profile.get(key), str):
            content[key] = profile[key]
    if reason is not None:
        content["reason"] = reason
    return content
