"""Presence: the status endpoints, set_presence on /sync, delivery to room-mates, idle."""

from __future__ import annotations

import asyncio

from tests.server.harness import running_server
from tests.sync.helpers import new_user

from hs.handlers.presence import IDLE_MS


def _presence(body: dict, user_id: str) -> dict | None:
    found = [e for e in body["presence"]["events"] if e["sender"] == user_id]
    assert len(found) <= 1
    return found[0]["content"] if found else None


async def test_presence_status_and_delivery(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        room = await alice.create_room()
        await bob.join(room)
        bob_token = (await bob.sync(set_presence="offline"))["next_batch"]
        carol_token = (await carol.sync(set_presence="offline"))["next_batch"]

        poll = asyncio.create_task(bob.sync(bob_token, timeout=10_000, set_presence="offline"))
        await asyncio.sleep(0.1)
        await alice.ok("PUT", f"/presence/{alice.user_id}/status",
                       {"presence": "online", "status_msg": "coding"})
        body = await asyncio.wait_for(poll, 5)
        content = _presence(body, alice.user_id)
        assert content is not None
        assert (content["presence"], content["status_msg"]) == ("online", "coding")
        assert content["currently_active"] is True and content["last_active_ago"] >= 0
        # Carol shares no room with Alice: nothing for her, and no peeking via GET.
        other = await carol.sync(carol_token, set_presence="offline")
        assert _presence(other, alice.user_id) is None
        status, err = await carol.req("GET", f"/presence/{alice.user_id}/status")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")

        got = await bob.ok("GET", f"/presence/{alice.user_id}/status")
        assert (got["presence"], got["status_msg"]) == ("online", "coding")
        await alice.ok("PUT", f"/presence/{alice.user_id}/status", {"presence": "unavailable"})
        # status_msg left out keeps the previous message.
        got = await alice.ok("GET", f"/presence/{alice.user_id}/status")
        assert (got["presence"], got["status_msg"]) == ("unavailable", "coding")

        # set_presence on /sync: a syncing client is online.
        token = (await bob.sync(body["next_batch"], set_presence="offline"))["next_batch"]
        await alice.sync()
        body = await bob.sync(token, set_presence="offline")
        assert _presence(body, alice.user_id)["presence"] == "online"

        # Syncing again while online and currently active sends no new presence.
        quiet = await bob.sync(body["next_batch"], set_presence="offline")
        await alice.sync()
        assert _presence(await bob.sync(quiet["next_batch"], set_presence="offline"),
                         alice.user_id) is None

        # Idle: online with no activity for IDLE_MS is served as unavailable.
        real_clock = hs.services.presence.clock
        hs.services.presence.clock = lambda: real_clock() + IDLE_MS + 1000
        got = await bob.ok("GET", f"/presence/{alice.user_id}/status")
        assert got["presence"] == "unavailable" and "currently_active" not in got
        assert got["last_active_ago"] > IDLE_MS

        # The idle sweep stores the transition and tells room-mates.
        hs.services.presence.clock = real_clock
        await alice.ok("PUT", f"/presence/{alice.user_id}/status", {"presence": "online"})
        token = (await bob.sync(set_presence="offline"))["next_batch"]
        assert await hs.services.presence.sweep_idle() is False  # not idle yet
        hs.services.presence.clock = lambda: real_clock() + IDLE_MS + 1000
        assert await hs.services.presence.sweep_idle() is True  # nobody online any more
        body = await bob.sync(token, set_presence="offline")
        assert _presence(body, alice.user_id)["presence"] == "unavailable"
        hs.services.presence.clock = real_clock

        # Errors.
        for bad in ({"presence": "busy"}, {}, {"presence": "online", "status_msg": 5}):
            status, err = await alice.req("PUT", f"/presence/{alice.user_id}/status", bad)
            assert status == 400, bad
        status, err = await bob.req("PUT", f"/presence/{alice.user_id}/status",
                                    {"presence": "online"})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")


async def test_presence_disabled(database_config):
    async with running_server(database_config, presence={"enabled": False}) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        token = (await bob.sync())["next_batch"]
        await alice.ok("PUT", f"/presence/{alice.user_id}/status", {"presence": "online"})
        body = await bob.sync(token)
        assert body["presence"]["events"] == []
        assert await bob.ok("GET", f"/presence/{alice.user_id}/status") == {
            "presence": "offline"}
        assert await hs.services.db.fetchval("SELECT count(*) FROM presence") == 0
