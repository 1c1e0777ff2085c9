"""Through the real pipeline (createRoom, join, send, redact): several clients send
concurrently into one room and every client reads the same order via /messages."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.server.harness import running_server
from tests.timeline.helpers import User, ids, make_user, q

from hs.storage.database import DatabaseConfig

V3 = "/_matrix/client/v3"


async def test_concurrent_senders_see_one_order(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as client:
        users = [await make_user(client, f"user{i}") for i in range(4)]
        owner = users[0]
        status, body = await client.request("POST", f"{V3}/createRoom",
                                            {"preset": "public_chat"}, token=owner.token)
        assert status == 200, body
        rid = body["room_id"]
        for u in users[1:]:
            status, body = await client.request("POST", f"{V3}/join/{q(rid)}", {},
                                                token=u.token)
            assert status == 200, body

        async def send(user: User, n: int) -> str:
            status, body = await client.request(
                "PUT", f"{V3}/rooms/{q(rid)}/send/m.room.message/t{n}",
                {"msgtype": "m.text", "body": f"{user.user_id} {n}"}, token=user.token)
            assert status == 200, body
            return str(body["event_id"])

        sent = await asyncio.gather(*[send(u, n) for n in range(6) for u in users])

        async def read_all(user: User) -> list[dict[str, Any]]:
            chunk: list[dict[str, Any]] = []
            token = None
            while True:
                frm = f"&from={q(token)}" if token else ""
                status, body = await client.request(
                    "GET", f"{V3}/rooms/{q(rid)}/messages?dir=b&limit=9{frm}",
                    token=user.token)
                assert status == 200, body
                chunk += body["chunk"]
                if "end" not in body:
                    return chunk[::-1]
                token = body["end"]

        views = await asyncio.gather(*[read_all(u) for u in users])
        orders = [ids(v) for v in views]
        assert all(o == orders[0] for o in orders[1:])
        assert set(sent) <= set(orders[0])
        assert views[0][0]["type"] == "m.room.create"
        assert all(e["room_id"] == rid for e in views[0])  # also v12's create event
        # Forwards gives the same order.
        status, fwd = await client.request(
            "GET", f"{V3}/rooms/{q(rid)}/messages?dir=f&limit=1000", token=owner.token)
        assert ids(fwd["chunk"]) == orders[0]
        # Each sender's own messages carry their transaction ID, others' do not.
        for user, view in zip(users, views, strict=True):
            for event in view:
                if event["type"] != "m.room.message":
                    continue
                mine = event["sender"] == user.user_id
                assert ("transaction_id" in event["unsigned"]) == mine

        # A redaction through the pipeline is served redacted with redacted_because.
        target = sent[0]
        status, body = await client.request(
            "PUT", f"{V3}/rooms/{q(rid)}/redact/{q(target)}/r1", {"reason": "spam"},
            token=owner.token)
        assert status == 200, body
        status, event = await client.request(
            "GET", f"{V3}/rooms/{q(rid)}/event/{q(target)}", token=users[2].token)
        assert status == 200 and event["content"] == {}
        assert event["unsigned"]["redacted_because"]["event_id"] == body["event_id"]
        # joined_members and joined_rooms agree with the pipeline's memberships.
        _, joined = await client.request("GET", f"{V3}/rooms/{q(rid)}/joined_members",
                                         token=users[3].token)
        assert set(joined["joined"]) == {u.user_id for u in users}
        _, rooms = await client.request("GET", f"{V3}/joined_rooms", token=users[3].token)
        assert rooms["joined_rooms"] == [rid]
