"""Builders for auth-rule tests: small rooms of PDUs in any room version.

Event IDs are assigned explicitly (``$<n>:<server>`` in v1/v2, ``$ev<n>`` from v3) so
the tests do not depend on reference hashing. Auth events are chosen with
``auth_types_for_event`` from the builder's current state unless a test overrides them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from hs.core.auth import auth_types_for_event, check_auth_rules
from hs.core.pdu import PDU, StateKey
from hs.core.room_versions import EventFormat, RoomVersion, get_room_version

ALICE = "@alice:a.example"  # the creator
BOB = "@bob:b.example"
CAROL = "@carol:c.example"
DAVE = "@dave:a.example"

_counter = itertools.count(1)


def _refs(ids: Iterable[str], room_version: RoomVersion) -> list[Any]:
    if room_version.event_format is EventFormat.V1:
        return [[i, {"sha256": "aGFzaA"}] for i in ids]
    return list(ids)


class Room:
    """A room's current state plus helpers to build, check and apply events."""

    def __init__(
        self,
        version: str,
        creator: str = ALICE,
        *,
        create_content: Mapping[str, Any] | None = None,
    ) -> None:
        self.rv = get_room_version(version)
        self.state: dict[StateKey, PDU] = {}
        self.last: str | None = None
        content: dict[str, Any] = {"room_version": version}
        if not self.rv.implicit_room_creator:
            content["creator"] = creator
        content.update(create_content or {})
        if self.rv.room_id_from_create_event:
            self.room_id = "!createroom"
            self.create = self.add(
                self.make("m.room.create", creator, content, "", event_id="$createroom")
            )
        else:
            self.room_id = "!room:" + creator.split(":", 1)[1]
            self.create = self.add(self.make("m.room.create", creator, content, ""))

    def make(
        self,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        *,
        event_id: str | None = None,
        prev: Iterable[str] | None = None,
        auth: Iterable[str] | None = None,
        rejected: str | None = None,
        **extra: Any,
    ) -> PDU:
        """An event on top of the current state (not applied to it)."""
        n = next(_counter)
        if event_id is None:
            if self.rv.event_format is EventFormat.V1:
                event_id = f"${n}:{sender.split(':', 1)[1]}"
            else:
                event_id = f"$ev{n}"
        data: dict[str, Any] = {
            "type": event_type,
            "sender": sender,
            "content": dict(content),
            "depth": n,
            "origin_server_ts": 1_700_000_000_000 + n,
            "hashes": {"sha256": "aGFzaA"},
            "signatures": {sender.split(":", 1)[1]: {"ed25519:1": "c2ln"}},
        }
        if event_type != "m.room.create" or not self.rv.room_id_from_create_event:
            data["room_id"] = self.room_id
        if self.rv.event_format is EventFormat.V1:
            data["event_id"] = event_id
        if state_key is not None:
            data["state_key"] = state_key
        if prev is None:
            prev = [] if self.last is None else [self.last]
        if auth is None:
            keys = auth_types_for_event(event_type, sender, state_key, content, self.rv)
            auth = [self.state[k].event_id for k in keys if k in self.state]
        data["prev_events"] = _refs(prev, self.rv)
        data["auth_events"] = _refs(auth, self.rv)
        data.update(extra)
        return PDU(data, self.rv, event_id=event_id, rejected_reason=rejected)

    def add(self, pdu: PDU) -> PDU:
        """Apply ``pdu`` to the state without checking it."""
        if pdu.is_state():
            self.state[pdu.state_tuple] = pdu
        self.last = pdu.event_id
        return pdu

    def auth_map(self, pdu: PDU) -> dict[StateKey, PDU]:
        """The events ``pdu`` cites, keyed by state key, plus the v12 create event."""
        by_id = {e.event_id: e for e in self.state.values()}
        cited = {by_id[i].state_tuple: by_id[i] for i in pdu.auth_event_ids() if i in by_id}
        if self.rv.room_id_from_create_event:
            cited[("m.room.create", "")] = self.create
        return cited

    def check(self, pdu: PDU) -> None:
        """Check ``pdu`` against the events it cites (raises ``AuthError``)."""
        check_auth_rules(pdu, self.auth_map(pdu))

    def send(
        self,
        event_type: str,
        sender: str,
        content: Mapping[str, Any],
        state_key: str | None = None,
        **kwargs: Any,
    ) -> PDU:
        """Build, check and apply an event that must be allowed."""
        pdu = self.make(event_type, sender, content, state_key, **kwargs)
        self.check(pdu)
        return self.add(pdu)

    def member(self, user: str, membership: str, sender: str | None = None, **kw: Any) -> PDU:
        """Set a membership directly, without auth (for arranging a test's state)."""
        content = {"membership": membership, **kw}
        return self.add(self.make("m.room.member", sender or user, content, user))

    def member_event(
        self, user: str, membership: str, sender: str | None = None, **content: Any
    ) -> PDU:
        return self.make(
            "m.room.member", sender or user, {"membership": membership, **content}, user
        )


def creator_pl(room: Room, users: Mapping[str, Any] | None = None, **levels: Any) -> dict[str, Any]:
    """Power levels content: the creator at 100 (v12: implicit, not listed) plus ``users``."""
    listed: dict[str, Any] = {}
    if not room.rv.privileged_creators:
        listed[room.create.sender] = 100
    listed.update(users or {})
    return {"users": listed, **levels}


def standard_room(
    version: str,
    join_rule: str = "public",
    users: Mapping[str, Any] | None = None,
    **levels: Any,
) -> Room:
    """Alice creates, joins and sets power levels and the join rule; Bob joins."""
    room = Room(version)
    room.send("m.room.member", ALICE, {"membership": "join"}, ALICE)
    room.send("m.room.power_levels", ALICE, creator_pl(room, users, **levels), "")
    room.send("m.room.join_rules", ALICE, {"join_rule": join_rule}, "")
    room.member(BOB, "join")
    return room
