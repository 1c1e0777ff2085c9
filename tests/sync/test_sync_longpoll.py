"""Long-polling and exactly-once delivery under concurrent writers."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from tests.server.harness import running_server
from tests.sync.helpers import bob_in_alices_room, bodies, new_user


async def test_long_poll_wakes_on_a_message(database_config):
    async with running_server(database_config) as hs:
        alice, bob, room, token = await bob_in_alices_room(hs)
        started = time.monotonic()
        poll = asyncio.create_task(bob.sync(token, timeout=10_000))
        await asyncio.sleep(0.2)
        assert not poll.done()
        await alice.send(room, "wake up")
        body = await asyncio.wait_for(poll, 5)
        assert time.monotonic() - started < 5
        assert bodies(body, room) == ["wake up"]
        assert body["next_batch"] != token


async def test_long_poll_times_out_empty_with_the_same_token(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        await alice.create_room()
        token = (await alice.sync())["next_batch"]
        # A write elsewhere (another user's room) must not end the wait early.
        carol = await new_user(hs, "carol")
        started = time.monotonic()
        poll = asyncio.create_task(alice.sync(token, timeout=600))
        await carol.send(await carol.create_room(), "not for alice")
        body = await poll
        assert time.monotonic() - started >= 0.55
        assert body["rooms"] == {}
        assert body["next_batch"] == token


async def test_long_poll_wakes_on_invite_and_account_data(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        token = (await bob.sync())["next_batch"]
        poll = asyncio.create_task(bob.sync(token, timeout=10_000))
        await asyncio.sleep(0.1)
        await alice.invite(room, bob.user_id)
        body = await asyncio.wait_for(poll, 5)
        assert room in body["rooms"]["invite"]
        poll = asyncio.create_task(bob.sync(body["next_batch"], timeout=10_000))
        await asyncio.sleep(0.1)
        await bob.ok("PUT", f"/user/{bob.user_id}/account_data/org.example.x", {"a": 1})
        body = await asyncio.wait_for(poll, 5)
        assert body["account_data"]["events"] == [{"type": "org.example.x",
                                                   "content": {"a": 1}}]


async def test_every_event_exactly_once_under_concurrent_senders(database_config):
    """Several senders write while one client syncs incrementally in a loop: each event
    is seen once, and in each sender's order."""
    async with running_server(database_config) as hs:
        reader = await new_user(hs, "reader")
        room = await reader.create_room()
        senders = [await new_user(hs, f"sender{i}") for i in range(4)]
        for s in senders:
            await s.join(room)
        token = (await reader.sync())["next_batch"]
        per_sender = 25
        done = asyncio.Event()

        async def send_all(i: int) -> None:
            for n in range(per_sender):
                await senders[i].send(room, f"{i}:{n}")

        async def read_all() -> list[str]:
            nonlocal token
            seen: list[str] = []
            while True:
                finished = done.is_set()
                body = await reader.sync(token, timeout=200,
                                         flt={"room": {"timeline": {"limit": 1000}}})
                if room in body["rooms"].get("join", {}):
                    entry = body["rooms"]["join"][room]
                    assert entry["timeline"]["limited"] is False
                    seen += bodies(body, room)
                token = body["next_batch"]
                if finished:
                    return seen

        reading = asyncio.create_task(read_all())
        await asyncio.gather(*(send_all(i) for i in range(len(senders))))
        done.set()
        seen = await reading
        assert len(seen) == len(set(seen)) == per_sender * len(senders)
        for i in range(len(senders)):
            mine = [int(b.split(":")[1]) for b in seen if b.startswith(f"{i}:")]
            assert mine == list(range(per_sender))
        # The sync order is the server's order.
        page = await reader.ok("GET", f"/rooms/{room}/messages?dir=b&limit=1000")
        server_order = [e["content"]["body"] for e in reversed(page["chunk"])
                        if e["type"] == "m.room.message"]
        assert seen == server_order


async def test_abandoned_long_poll_is_not_computed(database_config):
    """A client that hangs up mid long-poll (clients abandon /sync all the time): the
    wake-up it would have had computes nothing, and its waiter goes away."""
    async with running_server(database_config) as hs:
        alice, bob, room, token = await bob_in_alices_room(hs)
        sync = hs.services.sync
        computed: list[str] = []
        real_compute = sync._compute

        async def compute(user_id: str, *args: object) -> object:
            computed.append(user_id)
            return await real_compute(user_id, *args)

        sync._compute = compute
        notifier = hs.services.notifier
        before = notifier.waiter_count()
        async with aiohttp.ClientSession() as own:  # its own connection, closed below
            poll = asyncio.create_task(own.get(
                f"{hs.base}/_matrix/client/v3/sync?since={token}&timeout=20000",
                headers={"Authorization": f"Bearer {bob.token}"}))
            for _ in range(100):
                await asyncio.sleep(0.02)
                if notifier.waiter_count() > before:
                    break
            assert notifier.waiter_count() == before + 1
            poll.cancel()
        await asyncio.sleep(0.1)
        await alice.send(room, "anyone there?")
        for _ in range(100):
            if notifier.waiter_count() == before:
                break
            await asyncio.sleep(0.02)
        assert notifier.waiter_count() == before
        assert bob.user_id not in computed
        # A client still there is served as usual.
        body = await bob.sync(token, timeout=5_000)
        assert bodies(body, room) == ["anyone there?"]
