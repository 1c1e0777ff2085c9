"""Inbound EDUs (``EduHandler.on_edus``) on the real services: each type lands where
/sync reads it, only for users of the origin, and device lists resync on a prev_id gap."""

from __future__ import annotations

from typing import Any

from tests.e2e.helpers import Room, new_device
from tests.federation_sender.helpers import REMOTE, homeserver

BOB = f"@bob:{REMOTE}"


async def _setup(hs: Any) -> tuple[Any, Room, str]:
    alice = await new_device(hs, "alice")
    room = await Room(hs, "r1", alice.user_id).create(BOB)
    msg = room.rb.message("hi", sender=alice.user_id)
    await room._persist([msg])
    return alice, room, msg.event_id


def edu(edu_type: str, content: Any) -> dict[str, Any]:
    return {"edu_type": edu_type, "content": content}


async def test_typing_receipts_presence(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, room, event_id = await _setup(hs)
        room_id = room.rb.room_id
        await s.edu_handler.on_edus(REMOTE, [
            edu("m.typing", {"room_id": room_id, "user_id": BOB, "typing": True}),
            # Not joined / not the origin's user / malformed: ignored.
            edu("m.typing", {"room_id": room_id, "user_id": f"@carol:{REMOTE}",
                             "typing": True}),
            edu("m.typing", {"room_id": room_id, "user_id": "@eve:evil.test",
                             "typing": True}),
            edu("m.typing", "nope"), "garbage", edu("m.unknown", {}),
        ])
        assert s.typing.get_typing(room_id) == [BOB]
        await s.edu_handler.on_edus(REMOTE, [edu("m.typing", {
            "room_id": room_id, "user_id": BOB, "typing": False})])
        assert s.typing.get_typing(room_id) == []

        await s.edu_handler.on_edus(REMOTE, [edu("m.receipt", {room_id: {"m.read": {
            BOB: {"event_ids": [event_id], "data": {"ts": 1234}},
            "@eve:evil.test": {"event_ids": [event_id], "data": {"ts": 1}}}}})])
        receipts = await s.receipts.store.receipts_since(0, [room_id], alice.user_id)
        assert receipts[room_id] == {event_id: {"m.read": {BOB: {"ts": 1234}}}}

        await s.edu_handler.on_edus(REMOTE, [edu("m.presence", {"push": [
            {"user_id": BOB, "presence": "online", "last_active_ago": 5000,
             "currently_active": True, "status_msg": "here"},
            {"user_id": "@eve:evil.test", "presence": "online"},
            {"user_id": BOB, "presence": "bogus"}]})])
        rows = await s.presence.store.get_many([BOB, "@eve:evil.test"])
        assert set(rows) == {BOB}
        assert rows[BOB].state == "online" and rows[BOB].status_msg == "here"
        status = await s.presence.get_status(alice.user_id, BOB)
        assert status["presence"] == "online"


async def test_to_device_delivered_once(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, _room, _ = await _setup(hs)
        message = edu("m.direct_to_device", {
            "sender": BOB, "type": "m.room_key_request", "message_id": "m1",
            "messages": {alice.user_id: {"*": {"k": 1}}, "@x:elsewhere": {"D": {}}}})
        await s.edu_handler.on_edus(REMOTE, [message])
        await s.edu_handler.on_edus(REMOTE, [message])  # a retried transaction
        # Spoofed sender: dropped.
        await s.edu_handler.on_edus("evil.test", [edu("m.direct_to_device", {
            "sender": BOB, "type": "m.x", "message_id": "m2",
            "messages": {alice.user_id: {alice.device_id: {}}}})])
        got, _ = await s.to_device.get_to_device(alice.user_id, alice.device_id, 0)
        assert got == [{"sender": BOB, "type": "m.room_key_request", "content": {"k": 1}}]


async def test_device_list_updates_and_resync_on_gap(database_config) -> None:
    async with homeserver(database_config) as hs:
        s = hs.services
        alice, _room, _ = await _setup(hs)
        h = s.edu_handler
        fetched: list[str] = []
        remote_list = {"user_id": BOB, "stream_id": 9, "devices": [
            {"device_id": "D1", "keys": {"k": "1b"}, "device_display_name": "phone"},
            {"device_id": "D3", "keys": {"k": "3"}}],
            "master_key": {"user_id": BOB, "usage": ["master"], "keys": {"ed25519:M": "M"}}}

        async def fetch(user_id: str) -> dict[str, Any]:
            fetched.append(user_id)
            return remote_list

        h.fetch_devices = fetch
        store = h.remote_devices
        before = s.device_lists.current()

        def update(stream_id: int, prev: list[int], device: str, **kw: Any) -> Any:
            return edu("m.device_list_update", {"user_id": BOB, "device_id": device,
                                                "stream_id": stream_id, "prev_id": prev,
                                                **kw})

        await h.on_edus(REMOTE, [update(5, [], "D1", keys={"k": "1"})])
        await h.on_edus(REMOTE, [update(6, [5], "D2", keys={"k": "2"},
                                        device_display_name="laptop")])
        assert fetched == []
        assert await store.get_devices(BOB) == {"D1": ({"k": "1"}, None),
                                                "D2": ({"k": "2"}, "laptop")}
        await h.on_edus(REMOTE, [update(7, [6], "D2", deleted=True)])
        assert set(await store.get_devices(BOB)) == {"D1"}
        # A gap: 8 was never seen, so the whole list is fetched.
        await h.on_edus(REMOTE, [update(9, [8], "D3", keys={"k": "3"})])
        assert fetched == [BOB]
        assert await store.get_devices(BOB) == {"D1": ({"k": "1b"}, "phone"),
                                                "D3": ({"k": "3"}, None)}
        assert await store.get_stream_id(BOB) == 9
        assert (await store.get_cross_signing(BOB))["master"]["keys"] == {"ed25519:M": "M"}
        # Stale updates are ignored; other servers cannot speak for BOB.
        await h.on_edus(REMOTE, [update(4, [], "D9", keys={})])
        await h.on_edus("evil.test", [update(10, [9], "D9", keys={})])
        assert set(await store.get_devices(BOB)) == {"D1", "D3"}
        # Local users sharing the room are told to refetch BOB's keys.
        changed, _ = await s.device_lists.device_list_changes_since(alice.user_id, before)
        assert BOB in changed
        # Users sharing no room with us are not tracked.
        await h.on_edus(REMOTE, [edu("m.device_list_update", {
            "user_id": f"@zed:{REMOTE}", "device_id": "Z", "stream_id": 1, "prev_id": [7]})])
        assert fetched == [BOB] and await store.get_stream_id(f"@zed:{REMOTE}") is None

        await h.on_edus(REMOTE, [edu("m.signing_key_update", {
            "user_id": BOB, "master_key": {"user_id": BOB, "keys": {"ed25519:N": "N"}},
            "self_signing_key": {"user_id": BOB, "keys": {"ed25519:S": "S"}}})])
        cross = await store.get_cross_signing(BOB)
        assert cross["master"]["keys"] == {"ed25519:N": "N"} and "self_signing" in cross
