"""Typing and receipts in /sync, and the E2EE extensions: to-device (with deletion after
the next request acknowledges it), device_lists changed/left, one-time key counts."""

from __future__ import annotations

from tests.e2e.helpers import Device
from tests.server.harness import running_server
from tests.sync.helpers import new_user


def _ephemeral(body: dict, room: str) -> dict[str, dict]:
    events = body["rooms"]["join"][room]["ephemeral"]["events"]
    return {e["type"]: e["content"] for e in events}


async def test_typing_and_receipts(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        event_id = await alice.send(room, "read me")
        token = (await bob.sync())["next_batch"]
        await alice.ok("PUT", f"/rooms/{room}/typing/{alice.user_id}",
                       {"typing": True, "timeout": 30000})
        body = await bob.sync(token)
        assert _ephemeral(body, room)["m.typing"] == {"user_ids": [alice.user_id]}
        await bob.ok("POST", f"/rooms/{room}/receipt/m.read/{event_id}", {})
        body = await alice.sync(token)
        receipts = _ephemeral(body, room)["m.receipt"]
        assert bob.user_id in receipts[event_id]["m.read"]
        # Initial sync: current typing and stored receipts.
        initial = _ephemeral(await bob.sync(), room)
        assert initial["m.typing"] == {"user_ids": [alice.user_id]}
        assert bob.user_id in initial["m.receipt"][event_id]["m.read"]
        # Private receipts are only for their owner.
        await bob.ok("POST", f"/rooms/{room}/receipt/m.read.private/{event_id}", {})
        theirs = await alice.sync(body["next_batch"])
        assert room not in theirs["rooms"].get("join", {}) or "m.read.private" not in str(
            _ephemeral(theirs, room))
        # An ephemeral filter leaves them out.
        filtered = await bob.sync(flt={"room": {"ephemeral": {"not_types": ["m.receipt"]}}})
        assert set(_ephemeral(filtered, room)) == {"m.typing"}
        await alice.ok("PUT", f"/rooms/{room}/typing/{alice.user_id}", {"typing": False})
        body = await bob.sync(token)
        assert _ephemeral(body, room)["m.typing"] == {"user_ids": []}


async def test_to_device_delivery_and_deletion_after_ack(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        token = (await bob.sync())["next_batch"]
        await alice.ok("PUT", "/sendToDevice/org.example.ping/txn1",
                       {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
        await alice.ok("PUT", "/sendToDevice/org.example.ping/txn2",
                       {"messages": {bob.user_id: {"*": {"n": 2}}}})
        body = await bob.sync(token)
        assert [(m["type"], m["sender"], m["content"]) for m in body["to_device"]["events"]] == [
            ("org.example.ping", alice.user_id, {"n": 1}),
            ("org.example.ping", alice.user_id, {"n": 2})]
        count = "SELECT count(*) FROM device_inbox WHERE user_id = ?"
        # Not yet acknowledged: a retry with the same token gets them again.
        retry = await bob.sync(token)
        assert len(retry["to_device"]["events"]) == 2
        assert await hs.services.db.fetchval(count, bob.user_id) == 2
        after = await bob.sync(body["next_batch"])
        assert after["to_device"]["events"] == []
        assert await hs.services.db.fetchval(count, bob.user_id) == 0


async def test_to_device_paging_over_the_limit(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        token = (await bob.sync())["next_batch"]
        for i in range(130):
            await alice.ok("PUT", f"/sendToDevice/org.example.n/t{i}",
                           {"messages": {bob.user_id: {bob.device_id: {"i": i}}}})
        got: list[int] = []
        for _ in range(3):
            body = await bob.sync(token)
            got += [m["content"]["i"] for m in body["to_device"]["events"]]
            token = body["next_batch"]
        assert got == list(range(130))


async def test_device_lists_and_key_counts(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        token = (await alice.sync())["next_batch"]
        # Device keys must be signed by the device: the e2e helper does that.
        dev = Device(hs, bob.user_id, bob.device_id, bob.token)
        status, result = await dev.upload(device_keys=dev.device_keys(),
                                          one_time_keys=dev.otks(3),
                                          fallback_keys=dev.otks(1, 100, fallback=True))
        assert status == 200, result
        body = await alice.sync(token)
        assert bob.user_id in body["device_lists"]["changed"]
        mine = await bob.sync()
        assert mine["device_one_time_keys_count"]["signed_curve25519"] == 3
        assert mine["device_unused_fallback_key_types"] == ["signed_curve25519"]
        # /keys/changes understands sync tokens.
        changes = await alice.ok("GET", f"/keys/changes?from={token}&to={body['next_batch']}")
        assert bob.user_id in changes["changed"]
        # Bob leaves the only shared room: Alice may forget his devices.
        await bob.leave(room)
        body = await alice.sync(body["next_batch"])
        assert body["device_lists"]["left"] == [bob.user_id]
