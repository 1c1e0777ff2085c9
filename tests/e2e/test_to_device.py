"""PUT /sendToDevice and the inbox read/ack API /sync uses."""

from __future__ import annotations

from tests.e2e.helpers import new_device
from tests.server.harness import running_server


async def test_send_is_idempotent_and_acked_messages_are_deleted(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        td = hs.services.to_device
        start = td.current()
        body = {"messages": {bob.user_id: {bob.device_id: {"ciphertext": "hello"}}}}
        with hs.services.notifier.watch(users=[bob.user_id]) as waiter:
            status, result = await alice.req("PUT", "/sendToDevice/m.room.encrypted/t1", body)
            assert (status, result) == (200, {})
            assert waiter.woken and waiter.woken_by == {"to_device"}
        # The same txn ID again (a retry) does not deliver twice.
        status, _ = await alice.req("PUT", "/sendToDevice/m.room.encrypted/t1", body)
        assert status == 200
        # Another device of the sender may reuse the ID: txn IDs are per device.
        alice2 = await new_device(hs, "alice", register=False)
        await alice2.req("PUT", "/sendToDevice/m.room.encrypted/t1", body)

        messages, pos = await td.get_to_device(bob.user_id, bob.device_id, start)
        assert messages == [
            {"sender": alice.user_id, "type": "m.room.encrypted",
             "content": {"ciphertext": "hello"}}] * 2
        assert pos == td.current()
        # Not acknowledged yet: a sync from the old token sees them again.
        again, _ = await td.get_to_device(bob.user_id, bob.device_id, start)
        assert again == messages
        # The next sync presents `pos`: acknowledged, deleted.
        assert await td.ack_to_device(bob.user_id, bob.device_id, pos) == 2
        assert await td.get_to_device(bob.user_id, bob.device_id, start) == ([], pos)
        assert await td.get_to_device(bob.user_id, bob.device_id, pos) == ([], pos)


async def test_wildcard_explicit_and_unknown_devices(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob1 = await new_device(hs, "bob")
        bob2 = await new_device(hs, "bob", register=False)
        bob3 = await new_device(hs, "bob", register=False)
        td = hs.services.to_device
        start = td.current()
        body = {"messages": {
            bob1.user_id: {"*": {"n": "all"}, bob2.device_id: {"n": "just-2"},
                           "GHOST": {"n": "nobody"}},
            "@dave:remote.example": {"DEV": {"n": "far"}}}}
        status, _ = await alice.req("PUT", "/sendToDevice/org.example.test/w1", body)
        assert status == 200
        got = {}
        for dev in (bob1, bob2, bob3):
            messages, _ = await td.get_to_device(dev.user_id, dev.device_id, start)
            got[dev.device_id] = [m["content"]["n"] for m in messages]
        assert got == {bob1.device_id: ["all"], bob2.device_id: ["just-2"],
                       bob3.device_id: ["all"]}
        # Remote recipients are queued as an m.direct_to_device EDU for federation.
        (pos, edu), = await td.store.get_outbox("remote.example", 0, 10)
        assert edu["sender"] == alice.user_id and edu["type"] == "org.example.test"
        assert edu["messages"] == {"@dave:remote.example": {"DEV": {"n": "far"}}}
        assert "message_id" in edu and pos > start


async def test_limit_pages_and_device_deletion_clears_inbox(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        bob = await new_device(hs, "bob")
        td = hs.services.to_device
        start = td.current()
        for i in range(5):
            await alice.req("PUT", f"/sendToDevice/t/{i}", {"messages": {
                bob.user_id: {bob.device_id: {"i": i}}}})
        first, pos = await td.get_to_device(bob.user_id, bob.device_id, start, limit=3)
        assert [m["content"]["i"] for m in first] == [0, 1, 2]
        assert pos < td.current()
        rest, pos2 = await td.get_to_device(bob.user_id, bob.device_id, pos, limit=3)
        assert [m["content"]["i"] for m in rest] == [3, 4] and pos2 == td.current()
        await hs.services.devices.delete(bob.user_id, [bob.device_id])
        assert await td.store.get_messages(bob.user_id, bob.device_id, 0, pos2, 10) == []


async def test_bad_send_to_device_bodies(database_config):
    async with running_server(database_config) as hs:
        alice = await new_device(hs, "alice")
        for i, (body, errcode) in enumerate([
                ({}, "M_MISSING_PARAM"),
                ({"messages": []}, "M_BAD_JSON"),
                ({"messages": {alice.user_id: []}}, "M_BAD_JSON"),
                ({"messages": {alice.user_id: {"D": "text"}}}, "M_BAD_JSON"),
                ({"messages": {"not-a-user": {"D": {}}}}, "M_INVALID_PARAM")]):
            status, err = await alice.req("PUT", f"/sendToDevice/t/bad{i}", body)
            assert (status, err["errcode"]) == (400, errcode), body
        status, _ = await hs.request("PUT", "/_matrix/client/v3/sendToDevice/t/x",
                                     {"messages": {}})
        assert status == 401
