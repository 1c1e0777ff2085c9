"""Rooms table, aliases and the room directory."""

from __future__ import annotations

from tests.storage_events.helpers import RoomBuilder, new_room, open_store

from hs.storage.database import DatabaseConfig


async def test_rooms_aliases_directory(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rooms = store.rooms
        assert await rooms.store_room("!a:test", "11", "@alice:test", created_ts=5)
        assert not await rooms.store_room("!a:test", "9", "@bob:test")
        row = await rooms.get_room("!a:test")
        assert row is not None and (row.room_version, row.creator, row.is_public) == (
            "11", "@alice:test", False,
        )
        assert await rooms.get_room("!none:test") is None
        assert await rooms.get_room_version("!none:test") is None

        # Persisting a create event records the room; an explicit row wins.
        rb = RoomBuilder("!b:test")
        await new_room(store, rb)
        assert await store.get_room_version("!b:test") == "10"

        for room_id in ("!c:test", "!d:test", "!e:test"):
            await rooms.store_room(room_id, "10", None)
            assert await rooms.set_room_public(room_id, True)
        assert not await rooms.set_room_public("!none:test", True)
        await rooms.set_room_public("!d:test", False)
        assert await rooms.get_public_room_ids(10) == ["!c:test", "!e:test"]
        assert await rooms.get_public_room_ids(1) == ["!c:test"]
        assert await rooms.get_public_room_ids(10, after="!c:test") == ["!e:test"]

        assert await rooms.create_alias("#x:test", "!a:test", "@alice:test")
        assert not await rooms.create_alias("#x:test", "!b:test", "@bob:test")
        assert await rooms.create_alias("#y:test", "!a:test", "@bob:test")
        assert await rooms.get_alias("#x:test") == ("!a:test", "@alice:test")
        assert await rooms.get_aliases_for_room("!a:test") == ["#x:test", "#y:test"]
        assert await rooms.delete_alias("#x:test") == "!a:test"
        assert await rooms.delete_alias("#x:test") is None
        assert await rooms.get_alias("#x:test") is None


async def test_current_state_type_filter(database_config: DatabaseConfig) -> None:
    async with open_store(database_config) as store:
        rb = RoomBuilder()
        pdus = await new_room(store, rb, "@bob:test")
        members = await store.get_current_state_ids(rb.room_id, [("m.room.member", None)])
        assert set(members) == {("m.room.member", "@alice:test"), ("m.room.member", "@bob:test")}
        both = await store.get_current_state_ids(
            rb.room_id, [("m.room.create", ""), ("m.room.member", "@bob:test")]
        )
        assert both == {
            ("m.room.create", ""): pdus[0].event_id,
            ("m.room.member", "@bob:test"): pdus[2].event_id,
        }
