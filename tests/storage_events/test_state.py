"""State groups (deltas, snapshots, de-duplication) and current state / memberships."""

from __future__ import annotations

import random

from tests.storage_events.helpers import RoomBuilder, chain, new_room, open_store

from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter, StateDelta
from hs.storage.state import diff_state


async def test_delta_chain_reads_equal_full_state(database_config: DatabaseConfig) -> None:
    rng = random.Random(3)
    async with open_store(database_config, snapshot_interval=5) as store:
        rb = RoomBuilder()
        pdus = [rb.create(), rb.member("@alice:test")]
        for n in range(40):
            if rng.random() < 0.6:
                user = f"@u{rng.randrange(8)}:test"
                pdus.append(rb.member(user, rng.choice(("join", "leave", "invite"))))
            elif rng.random() < 0.5:
                pdus.append(rb.event("m.room.topic", content={"topic": str(n)}, state_key=""))
            else:
                pdus.append(rb.message(str(n)))
        # Persist in several batches, chaining state across them.
        for start in range(0, len(pdus), 7):
            part = pdus[start:start + 7]
            first = StateAfter(pdus[start - 1].event_id) if start else None
            await store.persist_events(chain(part, first))
        expected: dict[tuple[str, str], str] = {}
        fresh = type(store)(store.db, store.stream, snapshot_interval=5)  # cold caches
        for pdu in pdus:
            before = dict(expected)
            if pdu.is_state():
                expected[pdu.state_tuple] = pdu.event_id
            assert await fresh.get_state_ids_at(pdu.event_id) == expected
            assert await fresh.get_state_ids_at(pdu.event_id, before=True) == before
            # Warm cache path gives the same answer.
            assert await store.get_state_ids_at(pdu.event_id) == expected
        assert await store.get_current_state_ids(rb.room_id) == expected
        depths = await store.db.fetchall("SELECT delta_depth FROM state_groups")
        assert max(int(r[0]) for r in depths) < 5
        assert sum(1 for r in depths if int(r[0]) == 0) >= len(depths) // 5
        # Filtering by type / key.
        last = pdus[-1].event_id
        members = await store.get_state_ids_at(last, [("m.room.member", None)])
        assert members == {k: v for k, v in expected.items() if k[0] == "m.room.member"}
        topic = await store.get_state_ids_at(last, [("m.room.topic", "")])
        assert topic == {k: v for k, v in expected.items() if k == ("m.room.topic", "")}


async def test_non_state_events_share_groups(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        groups_before = int(await store.db.fetchval("SELECT count(*) FROM state_groups"))
        msgs = [rb.message(str(i)) for i in range(10)]
        res = await store.persist_events(chain(msgs, StateAfter(pdus[-1].event_id)))
        join_group = await store.get_state_group_for_event(pdus[-1].event_id)
        assert {r.state_group for r in res} == {join_group}
        assert int(await store.db.fetchval("SELECT count(*) FROM state_groups")) == groups_before
        # One group per state event: create and join (the empty start costs one more).
        assert groups_before == 3


async def test_explicit_deltas_full_maps_and_removal(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb, "@bob:test")
        head = pdus[-1].event_id
        g = await store.get_state_group_for_event(head)
        assert g is not None
        base = await store.get_state_ids_for_group(g)
        bob = ("m.room.member", "@bob:test")
        # A resolved state handed over as a delta (here: dropping bob) ...
        m1 = rb.message("after resolution", prev=[head])
        [r1] = await store.persist_events(
            [EventToPersist(m1, state_before=StateDelta(g, {bob: None}))]
        )
        assert r1.state_group is not None
        state = await store.get_state_ids_for_group(r1.state_group)
        assert state == {k: v for k, v in base.items() if k != bob}
        # ... or as a full map (stored as a snapshot).
        m2 = rb.message("full", prev=[head])
        [r2] = await store.persist_events([EventToPersist(m2, state_before=dict(base))])
        assert await store.get_state_ids_for_group(r2.state_group or 0) == base
        # An empty delta reuses the group.
        m3 = rb.message("same", prev=[head])
        [r3] = await store.persist_events([EventToPersist(m3, state_before=StateDelta(g, {}))])
        assert r3.state_group == g


async def test_current_state_and_memberships(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb, "@bob:test")
        join_bob = pdus[-1]
        invite = rb.member("@carol:test", "invite", sender="@alice:test")
        named = rb.member("@bob:test", content={"displayname": "Bob", "avatar_url": "mxc://a/b"})
        leave = rb.member("@alice:test", "leave")
        await store.persist_events(chain([invite, named, leave], StateAfter(join_bob.event_id)))

        members = await store.get_members(rb.room_id)
        assert {u: m.membership for u, m in members.items()} == {
            "@alice:test": "leave", "@bob:test": "join", "@carol:test": "invite",
        }
        assert members["@bob:test"].displayname == "Bob"
        assert members["@bob:test"].avatar_url == "mxc://a/b"
        assert members["@carol:test"].sender == "@alice:test"
        joined = await store.get_members(rb.room_id, ["join"])
        assert set(joined) == {"@bob:test"}
        # Members at an earlier event.
        at_join = await store.get_members(rb.room_id, at_event=join_bob.event_id)
        assert {u: m.membership for u, m in at_join.items()} == {
            "@alice:test": "join", "@bob:test": "join",
        }
        assert set(await store.get_members(rb.room_id, ["invite"], at_event=leave.event_id)) == {
            "@carol:test"
        }

        bob_rooms = await store.get_rooms_for_user("@bob:test")
        assert [(r.room_id, r.membership, r.event_id) for r in bob_rooms] == [
            (rb.room_id, "join", named.event_id)
        ]
        assert await store.get_rooms_for_user("@alice:test") == []
        left = await store.get_rooms_for_user("@alice:test", ["leave"])
        assert [r.event_id for r in left] == [leave.event_id]
        invited = await store.get_rooms_for_user("@carol:test", ["invite"])
        assert invited[0].room_version == "10"
        history = await store.rooms.get_membership_history(rb.room_id, "@alice:test")
        assert [m.membership for m in history] == ["join", "leave"]

        deltas = await store.rooms.get_current_state_deltas(0, store.max_stream_ordering())
        bob_changes = [d for d in deltas if d.state_key == "@bob:test"]
        assert [(d.event_id, d.prev_event_id) for d in bob_changes] == [
            (join_bob.event_id, None), (named.event_id, join_bob.event_id),
        ]
        only = await store.rooms.get_current_state_deltas(0, 10**9, [rb.room_id])
        assert len(only) == len(deltas)


async def test_out_of_band_invite_via_explicit_delta(database_config: DatabaseConfig) -> None:
    """An invite to a remote room arrives alone, as an outlier: the caller sets the
    current membership explicitly."""
    async with open_store(database_config) as store:
        rb = RoomBuilder("!remote:elsewhere")
        rb.create("@remote:elsewhere")
        invite = rb.member("@me:test", "invite", sender="@remote:elsewhere")
        await store.persist_events(
            [EventToPersist(invite, outlier=True)],
            current_state={rb.room_id: {("m.room.member", "@me:test"): invite.event_id}},
        )
        rooms = await store.get_rooms_for_user("@me:test", ["invite"])
        assert [(r.room_id, r.event_id) for r in rooms] == [(rb.room_id, invite.event_id)]
        assert await store.get_room_version(rb.room_id) == "10"
        assert await store.get_forward_extremities(rb.room_id) == set()
        # Rejecting the invite locally (another outlier) replaces it.
        leave = rb.member("@me:test", "leave", prev=[invite.event_id])
        await store.persist_events(
            [EventToPersist(leave, outlier=True)],
            current_state={rb.room_id: {("m.room.member", "@me:test"): leave.event_id}},
        )
        assert await store.get_rooms_for_user("@me:test", ["invite"]) == []
        assert len(await store.get_rooms_for_user("@me:test", ["leave"])) == 1


async def test_resolved_state_after_merge(database_config: DatabaseConfig) -> None:
    """Forks that both change state: the pipeline resolves and hands over the result."""
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb)
        head = pdus[-1].event_id
        topic_a = rb.event("m.room.topic", content={"topic": "a"}, state_key="", prev=[head])
        name_b = rb.event("m.room.name", content={"name": "b"}, state_key="", prev=[head])
        topic_b = rb.event("m.room.topic", content={"topic": "b"}, state_key="",
                           prev=[name_b.event_id])
        await store.persist_events([EventToPersist(topic_a, state_before=StateAfter(head))])
        await store.persist_events(chain([name_b, topic_b], StateAfter(head)))
        # The default applied each batch's state events in arrival order.
        current = await store.get_current_state_ids(rb.room_id)
        assert current[("m.room.topic", "")] == topic_b.event_id
        # Resolution picked topic_a; the merge event carries the resolved state.
        after_a = await store.get_state_ids_at(topic_a.event_id)
        after_b = await store.get_state_ids_at(topic_b.event_id)
        assert after_a is not None and after_b is not None
        resolved = {**after_b, ("m.room.topic", ""): topic_a.event_id}
        group_b = await store.get_state_group_for_event(topic_b.event_id)
        merge = rb.message("merge", prev=[topic_a.event_id, topic_b.event_id])
        before = StateDelta(group_b, diff_state(after_b, resolved))
        [res] = await store.persist_events(
            [EventToPersist(merge, state_before=before)],
            current_state={rb.room_id: diff_state(current, resolved)},
        )
        assert await store.get_state_ids_for_group(res.state_group or 0) == resolved
        assert await store.get_current_state_ids(rb.room_id) == resolved
        assert await store.get_forward_extremities(rb.room_id) == {merge.event_id}
        assert diff_state({("a", ""): "$1", ("b", ""): "$2"}, {("a", ""): "$3"}) == {
            ("a", ""): "$3", ("b", ""): None,
        }
