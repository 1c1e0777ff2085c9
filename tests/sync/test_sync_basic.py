"""Initial and incremental /sync over real rooms (SQLite and PostgreSQL)."""

from __future__ import annotations

from tests.server.harness import running_server
from tests.sync.helpers import bodies, new_user, timeline


async def test_initial_sync_with_history_in_several_rooms(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        rooms = [await alice.create_room(name=f"room {i}") for i in range(3)]
        for r in rooms:
            await bob.join(r)
            for n in range(15):
                await alice.send(r, f"{r} #{n}")
        body = await bob.sync()
        assert set(body["rooms"]["join"]) == set(rooms)
        for r in rooms:
            entry = body["rooms"]["join"][r]
            assert bodies(body, r) == [f"{r} #{n}" for n in range(5, 15)]
            assert entry["timeline"]["limited"] is True
            state_types = {e["type"] for e in entry["state"]["events"]}
            assert {"m.room.create", "m.room.power_levels", "m.room.name",
                    "m.room.member"} <= state_types
            assert all("room_id" not in e for e in entry["timeline"]["events"])
            assert entry["summary"]["m.joined_member_count"] == 2
            assert entry["summary"]["m.heroes"] == [alice.user_id]
            # Bob read nothing: every message of Alice's counts (S2's push counts; zeros
            # when the push service is absent).
            unread = 15 if hasattr(hs.services, "push") else 0
            assert entry["unread_notifications"] == {"notification_count": unread,
                                                     "highlight_count": 0}
            # prev_batch pages back through /messages from just before the timeline.
            status, page = await bob.req(
                "GET", f"/rooms/{r}/messages?dir=b&limit=5&from={entry['timeline']['prev_batch']}")
            assert status == 200, page
            assert [e["content"]["body"] for e in page["chunk"]] == [
                f"{r} #{n}" for n in range(4, -1, -1)]
        assert body["next_batch"].startswith("s")
        assert body["device_one_time_keys_count"] == {"signed_curve25519": 0}


async def test_incremental_sync_only_new_events(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room()
        other = await alice.create_room()
        first = await alice.sync()
        await alice.send(room, "one")
        await alice.send(room, "two")
        body = await alice.sync(first["next_batch"])
        assert list(body["rooms"]["join"]) == [room]
        assert bodies(body, room) == ["one", "two"]
        entry = body["rooms"]["join"][room]
        assert entry["timeline"]["limited"] is False
        assert entry["state"]["events"] == []
        assert other not in body["rooms"]["join"]
        # Own events carry the sending device's transaction ID.
        assert all("transaction_id" in e["unsigned"] for e in timeline(body, room))
        again = await alice.sync(body["next_batch"])
        assert again["rooms"] == {}
        assert again["next_batch"] == body["next_batch"]


async def test_incremental_limited_gives_state_delta(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room = await alice.create_room(name="before")
        first = await alice.sync()
        await alice.ok("PUT", f"/rooms/{room}/state/m.room.name", {"name": "after"})
        for n in range(12):
            await alice.send(room, f"m{n}")
        body = await alice.sync(first["next_batch"], flt={"room": {"timeline": {"limit": 5}}})
        entry = body["rooms"]["join"][room]
        assert entry["timeline"]["limited"] is True
        assert bodies(body, room) == [f"m{n}" for n in range(7, 12)]
        names = [e for e in entry["state"]["events"] if e["type"] == "m.room.name"]
        assert [e["content"]["name"] for e in names] == ["after"]
        # Nothing unchanged (e.g. the create event) is repeated.
        assert not [e for e in entry["state"]["events"] if e["type"] == "m.room.create"]


async def test_bad_parameters_are_spec_errors(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        for params in ({"since": "garbage"}, {"since": "s1_2"}, {"timeout": "soon"},
                       {"set_presence": "busy"}, {"full_state": "yes"},
                       {"filter": "{not json"}, {"filter": "99999"},
                       {"since": "s1_1_1_1_1_1_99999999999999999999"}):
            since = params.pop("since", None)
            status, body = await alice.sync_raw(since, **params)
            assert status == 400, (params, body)
            assert body["errcode"] in ("M_INVALID_PARAM", "M_BAD_JSON", "M_NOT_FOUND"), body
        status, body = await hs.request("GET", "/_matrix/client/v3/sync")
        assert status == 401
