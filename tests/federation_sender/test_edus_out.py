"""Outbound EDUs and PDUs produced from local changes on the real services: typing,
public receipts, presence, device-list updates, to-device messages from the outbox, and
locally created events from the pipeline hook - all addressed to the servers in the room."""

from __future__ import annotations

from typing import Any

from tests.e2e.helpers import Room, new_device
from tests.federation_sender.helpers import REMOTE, RecordingClient, homeserver, wait_for

from hs.federation.sender.edus_out import device_list_stream_id
from hs.storage.events import EventToPersist, StateAfter
from hs.storage.events.types import PersistedEvent

BOB = f"@bob:{REMOTE}"


async def _setup(hs: Any) -> tuple[Any, Room, RecordingClient]:
    s = hs.services
    client = RecordingClient(s.config.server_name)
    s.sender.ctx.client = client
    alice = await new_device(hs, "alice")
    room = await Room(hs, "r1", alice.user_id).create(BOB)
    return alice, room, client


async def test_typing_receipts_presence_out(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, room, client = await _setup(hs)
        room_id = room.rb.room_id
        msg = room.rb.message("hi", sender=alice.user_id)
        await room._persist([msg])

        await s.typing.set_typing(room_id, alice.user_id, True, 10_000)
        await wait_for(lambda: len(client.edus("m.typing")) == 1)
        await s.typing.set_typing(room_id, alice.user_id, False)
        await wait_for(lambda: len(client.edus("m.typing")) == 2)
        assert client.edus("m.typing") == [
            {"room_id": room_id, "user_id": alice.user_id, "typing": True},
            {"room_id": room_id, "user_id": alice.user_id, "typing": False}]

        await s.receipts.send_receipt(alice.user_id, room_id, "m.read.private", msg.event_id)
        await s.receipts.send_receipt(alice.user_id, room_id, "m.read", msg.event_id)
        await wait_for(lambda: len(client.edus("m.receipt")) == 1)
        (receipt,) = client.edus("m.receipt")
        entry = receipt[room_id]["m.read"][alice.user_id]
        assert entry["event_ids"] == [msg.event_id] and isinstance(entry["data"]["ts"], int)

        await s.presence.set_status(alice.user_id, alice.user_id, "online", "hello")
        await wait_for(lambda: len(client.edus("m.presence")) == 1)
        (push,) = client.edus("m.presence")[0]["push"]
        assert push["user_id"] == alice.user_id and push["presence"] == "online"
        assert push["status_msg"] == "hello" and push["currently_active"] is True
        # Everything went to the remote server only, never to ourselves.
        assert {dest for dest, _ in client.sent} == {REMOTE}
        await s.sender.flush()
        assert len(client.edus("m.receipt")) == 1  # the private receipt stayed home


async def test_device_list_and_to_device_out(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, _room, client = await _setup(hs)
        status, _ = await alice.upload(device_keys=alice.device_keys())
        assert status == 200
        # (Registering the device was a change too; the upload is the one with keys.)
        await wait_for(lambda: any("keys" in u for u in client.edus("m.device_list_update")))
        update = client.edus("m.device_list_update")[-1]
        assert update["user_id"] == alice.user_id and update["device_id"] == alice.device_id
        assert update["keys"]["keys"] == alice.device_keys()["keys"]
        assert update["stream_id"] == device_list_stream_id(s.device_lists.current(), 0)
        assert update["prev_id"] and update["prev_id"][0] < update["stream_id"]
        # Several devices changed at one position: unique IDs, chained by prev_id.
        await s.device_lists.record_change(alice.user_id, ["GONE1", "GONE2"])
        await wait_for(lambda: len(client.edus("m.device_list_update")) >= 3)
        first, second = client.edus("m.device_list_update")[-2:]
        assert (first["device_id"], second["device_id"]) == ("GONE1", "GONE2")
        assert first["deleted"] is True and second["deleted"] is True
        assert first["prev_id"] == [update["stream_id"]]
        assert second["prev_id"] == [first["stream_id"]]
        assert second["stream_id"] > first["stream_id"] > update["stream_id"]
        assert await s.sender.store.get_device_list_id(alice.user_id) == second["stream_id"]

        await s.to_device.send(alice.user_id, alice.device_id, "m.test", "t1",
                               {BOB: {"DEV": {"a": 1}}})
        await wait_for(lambda: len(client.edus("m.direct_to_device")) == 1)
        (message,) = client.edus("m.direct_to_device")
        assert message["sender"] == alice.user_id and message["type"] == "m.test"
        assert message["messages"] == {BOB: {"DEV": {"a": 1}}} and message["message_id"]
        await s.sender.flush()
        assert await s.to_device.store.get_outbox(REMOTE, 0, 10) == []


async def test_pipeline_hook_sends_local_events(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, room, client = await _setup(hs)
        assert s.sender.on_persisted in s.rooms.pipeline.on_persisted
        mine = room.rb.message("mine", sender=alice.user_id)
        theirs = room.rb.message("theirs", sender=BOB)
        await room._persist([mine, theirs])
        meta = await s.events.get_events_with_meta([mine.event_id, theirs.event_id])
        batch = [EventToPersist(mine, state_before=StateAfter(room.rb.create_id or "")),
                 EventToPersist(theirs, state_before=StateAfter(mine.event_id))]
        results = [PersistedEvent(e, meta[e][1].stream_ordering, None)
                   for e in (mine.event_id, theirs.event_id)]
        await s.sender.on_persisted(room.rb.room_id, batch, results)
        await wait_for(lambda: len(client.pdus()) == 1)
        await s.sender.flush()
        assert [p["content"]["body"] for p in client.pdus()] == ["mine"]
        assert "unsigned" not in client.pdus()[0]
        rows = await s.sender.store.catch_up_events(REMOTE, 0, 10)
        assert rows == [(mine.event_id, meta[mine.event_id][1].stream_ordering)]


async def test_room_servers_are_kept_until_the_room_state_changes(database_config) -> None:
    """The hook reads a room's servers once, not per message; the pipeline's state-change
    signal makes the next message read them again (a server that left gets nothing)."""
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, room, client = await _setup(hs)
        assert s.sender.forget_room in s.rooms.pipeline.on_state_changed
        store = s.sender.store
        reads = 0
        original = store.servers_in_rooms

        async def counting(room_ids: Any) -> Any:
            nonlocal reads
            reads += 1
            return await original(room_ids)

        store.servers_in_rooms = counting  # type: ignore[method-assign]
        room_id = room.rb.room_id

        async def hook(pdu: Any) -> None:
            await room._persist([pdu])
            meta = await s.events.get_events_with_meta([pdu.event_id])
            await s.sender.on_persisted(
                room_id, [EventToPersist(pdu, state_before=StateAfter(pdu.event_id))],
                [PersistedEvent(pdu.event_id, meta[pdu.event_id][1].stream_ordering, None)])

        await hook(room.rb.message("one", sender=alice.user_id))
        await hook(room.rb.message("two", sender=alice.user_id))
        assert reads == 1
        await wait_for(lambda: len(client.pdus()) == 2)
        # BOB leaves (persisted directly here, so the test gives the pipeline's signal).
        await room._persist([room.rb.member(BOB, "leave", sender=BOB)])
        s.sender.forget_room(room_id)
        await hook(room.rb.message("three", sender=alice.user_id))
        assert reads == 2
        await s.sender.flush()
        assert [p["content"]["body"] for p in client.pdus()] == ["one", "two"]
