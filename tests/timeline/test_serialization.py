"""The client event format: redaction, transaction IDs, prev_content, v11 ``redacts``,
bundled aggregations; ``/event`` and ``/context``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from tests.timeline.helpers import Room, ids, make_user, q, room_id, server_with_users

from hs.handlers.client_events import Viewer
from hs.storage.database import DatabaseConfig
from hs.storage.events import EventToPersist, StateAfter


async def test_event_format_and_get_event(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol") as (client, users):
        alice, bob, carol = users
        status, login = await client.login("alice")
        assert status == 200
        alice2_token, alice2_device = login["access_token"], login["device_id"]

        room = Room(client, room_id("fmt"), version="11")
        await room.create(alice, bob)
        sent_txn = room.msg(alice, "with txn")
        await room.add(sent_txn, txn=(alice, "txn-1"))
        secret = room.msg(bob, "secret", url="mxc://x/y")
        name1 = room.rb.event("m.room.name", alice.user_id, {"name": "One"}, state_key="")
        name2 = room.rb.event("m.room.name", bob.user_id, {"name": "Two"}, state_key="")
        await room.add(secret, name1, name2)
        redaction = room.redaction(alice, secret.event_id)
        await room.add(redaction)

        async def get(event_id: str, token: str) -> tuple[int, dict]:
            return await client.request("GET", room.path(f"/event/{q(event_id)}"), token=token)

        # transaction_id only for the device that sent it.
        _, own = await get(sent_txn.event_id, alice.token)
        assert own["unsigned"]["transaction_id"] == "txn-1"
        assert own["unsigned"]["age"] >= 0
        assert own["unsigned"]["membership"] == "join"
        assert {"event_id", "type", "content", "sender", "origin_server_ts", "room_id"} <= set(own)
        _, other_device = await get(sent_txn.event_id, alice2_token)
        assert "transaction_id" not in other_device["unsigned"] and alice2_device
        _, other_user = await get(sent_txn.event_id, bob.token)
        assert "transaction_id" not in other_user["unsigned"]

        # Redacted: served redacted, with redacted_because.
        _, red = await get(secret.event_id, bob.token)
        assert red["content"] == {}
        assert red["unsigned"]["redacted_because"]["event_id"] == redaction.event_id
        # v11: `redacts` in content and at the top level.
        _, rev = await get(redaction.event_id, bob.token)
        assert rev["redacts"] == secret.event_id == rev["content"]["redacts"]

        # State events carry what they replaced.
        _, n2 = await get(name2.event_id, alice.token)
        assert n2["state_key"] == ""
        assert n2["unsigned"]["prev_content"] == {"name": "One"}
        assert n2["unsigned"]["prev_sender"] == alice.user_id
        assert n2["unsigned"]["replaces_state"] == name1.event_id
        _, n1 = await get(name1.event_id, alice.token)
        assert "prev_content" not in n1["unsigned"]

        # Not found: unknown, other room, not visible, rejected.
        other = Room(client, room_id("other"))
        await other.create(carol)
        hidden = other.msg(carol, "hidden")
        await other.add(hidden)
        rejected = room.msg(alice, "rejected")
        await client.services.events.persist_events([EventToPersist(
            room.rb.events[rejected.event_id].__class__(
                rejected.data, rejected.room_version, rejected_reason="auth"),
            state_before=StateAfter(redaction.event_id))])
        for eid, token in [("$nope", alice.token), (hidden.event_id, alice.token),
                           (rejected.event_id, alice.token)]:
            status, body = await get(eid, token)
            assert (status, body["errcode"]) == (404, "M_NOT_FOUND"), eid
        status, body = await client.request("GET", other.path(f"/event/{q(hidden.event_id)}"),
                                            token=alice.token)
        assert status in (403, 404)
        # Rejected events never appear in /messages either.
        _, page = await client.request("GET", room.path("/messages?dir=b&limit=50"),
                                       token=alice.token)
        assert rejected.event_id not in ids(page["chunk"])


async def test_aggregations(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob") as (client, users):
        alice, bob = users
        carol = await make_user(client, "carol")
        room = Room(client, room_id("agg"))
        await room.create(alice, bob, carol)
        root = room.msg(alice, "root")
        await room.add(root)
        edit1 = room.relation(alice, root.event_id, "m.replace", "edit1")
        edit_by_bob = room.relation(bob, root.event_id, "m.replace", "not allowed")
        edit2 = room.relation(alice, root.event_id, "m.replace", "edit2")
        reply1 = room.relation(bob, root.event_id, "m.thread", "r1")
        reply2 = room.relation(bob, root.event_id, "m.thread", "r2")
        ref = room.relation(alice, root.event_id, "m.reference", "ref")
        await room.add(edit1, edit_by_bob, edit2, reply1, reply2, ref)

        async def root_for(token: str) -> dict:
            status, body = await client.request(
                "GET", room.path(f"/event/{q(root.event_id)}"), token=token)
            assert status == 200, body
            return body

        rels = (await root_for(alice.token))["unsigned"]["m.relations"]
        assert rels["m.replace"]["event_id"] == edit2.event_id
        assert rels["m.replace"]["content"]["m.new_content"]["body"] == "edit2"
        thread = rels["m.thread"]
        assert thread["count"] == 2 and thread["latest_event"]["event_id"] == reply2.event_id
        assert thread["current_user_participated"] is True  # alice is the root's sender
        assert rels["m.reference"] == {"chunk": [{"event_id": ref.event_id}]}
        # Original content is not replaced by the edit.
        assert (await root_for(alice.token))["content"]["body"] == "root"
        bob_view = (await root_for(bob.token))["unsigned"]["m.relations"]["m.thread"]
        assert bob_view["current_user_participated"] is True
        carol_view = (await root_for(carol.token))["unsigned"]["m.relations"]["m.thread"]
        assert carol_view["current_user_participated"] is False

        # The same bundle in /messages (batched for the page), and none once redacted.
        _, page = await client.request("GET", room.path("/messages?dir=b&limit=50"),
                                       token=alice.token)
        by_id = {e["event_id"]: e for e in page["chunk"]}
        assert by_id[root.event_id]["unsigned"]["m.relations"]["m.thread"]["count"] == 2
        redaction = (await room.add(room.redaction(alice, root.event_id)))[0]
        # Before v11 `redacts` is top-level; it is mirrored into content for new clients.
        _, served = await client.request(
            "GET", room.path(f"/event/{q(redaction.event_id)}"), token=bob.token)
        assert served["redacts"] == root.event_id == served["content"]["redacts"]
        body = await root_for(alice.token)
        assert "m.relations" not in body["unsigned"] and body["content"] == {}
        assert body["unsigned"]["redacted_because"]["sender"] == alice.user_id


async def test_context(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob", "carol") as (client, users):
        alice, bob, carol = users
        room = Room(client, room_id("ctx"))
        setup = await room.create(alice, bob)
        msgs = await room.add(*[room.msg(bob if i % 2 else alice, f"c{i}") for i in range(12)])
        mid = msgs[6]
        status, body = await client.request(
            "GET", room.path(f"/context/{q(mid.event_id)}?limit=4"), token=alice.token)
        assert status == 200, body
        assert body["event"]["event_id"] == mid.event_id
        assert ids(body["events_before"]) == [m.event_id for m in msgs[4:6]][::-1]
        assert ids(body["events_after"]) == [m.event_id for m in msgs[7:9]]
        state_types = {(e["type"], e["state_key"]) for e in body["state"]}
        assert ("m.room.create", "") in state_types
        assert ("m.room.member", bob.user_id) in state_types
        # The tokens continue with /messages.
        _, older = await client.request(
            "GET", room.path(f"/messages?dir=b&limit=2&from={q(body['start'])}"),
            token=alice.token)
        assert ids(older["chunk"]) == [m.event_id for m in msgs[2:4]][::-1]
        _, newer = await client.request(
            "GET", room.path(f"/messages?dir=f&limit=2&from={q(body['end'])}"),
            token=alice.token)
        assert ids(newer["chunk"]) == [m.event_id for m in msgs[9:11]]

        # Lazy-loading: only the senders' memberships.
        flt = q('{"lazy_load_members": true}')
        _, lazy = await client.request(
            "GET", room.path(f"/context/{q(mid.event_id)}?limit=2&filter={flt}"),
            token=alice.token)
        assert {e["type"] for e in lazy["state"]} == {"m.room.member"}
        # Filtered context.
        flt = q(f'{{"senders": ["{alice.user_id}"]}}')
        _, only = await client.request(
            "GET", room.path(f"/context/{q(mid.event_id)}?limit=4&filter={flt}"),
            token=alice.token)
        assert {e["sender"] for e in only["events_before"] + only["events_after"]} == {
            alice.user_id}

        for eid, token, status_code in [("$unknown", alice.token, 404),
                                        (mid.event_id, carol.token, 403),
                                        (setup[0].event_id, "bad", 401)]:
            status, body = await client.request(
                "GET", room.path(f"/context/{q(eid)}"), token=token)
            assert status == status_code, body


async def test_page_serialization_is_batched(database_config: DatabaseConfig) -> None:
    """Serializing a page costs the same number of queries for 5 or 40 events (with
    edits, threads, references, redactions and state changes in it)."""
    async with server_with_users(database_config, "alice", "bob") as (client, users):
        alice, bob = users
        room = Room(client, room_id("batch"))
        await room.create(alice, bob)
        db = client.services.db
        calls = 0
        originals = {name: getattr(db, name) for name in ("fetchall", "fetchone", "fetchval")}

        def counting(fn):  # type: ignore[no-untyped-def]
            async def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                return await fn(*args, **kwargs)
            return wrapper

        async def page_cost(n: int) -> int:
            nonlocal calls
            roots = [(await room.add(room.msg(alice, f"root{i}"), txn=(alice, f"{n}-{i}")))[0]
                     for i in range(n)]
            extras = []
            for i, r in enumerate(roots):
                extras.append(room.relation(alice, r.event_id, "m.replace", "edited"))
                extras.append(room.relation(bob, r.event_id, "m.thread", "reply"))
                extras.append(room.relation(bob, r.event_id, "m.reference"))
                extras.append(room.rb.event("m.room.topic", bob.user_id, {"topic": f"t{i}"},
                                            state_key=""))
            extras.append(room.redaction(alice, roots[0].event_id))
            await room.add(*extras)
            everything = roots + extras
            for name, fn in originals.items():
                setattr(db, name, counting(fn))
            calls = 0
            try:
                out = await client.services.timeline.serializer.serialize(
                    everything, Viewer(alice.user_id, alice.device_id))
            finally:
                for name, fn in originals.items():
                    setattr(db, name, fn)
            assert len(out) == len(everything)
            assert out[1]["unsigned"]["transaction_id"] == f"{n}-1"
            assert set(out[1]["unsigned"]["m.relations"]) == {"m.replace", "m.thread",
                                                               "m.reference"}
            assert "redacted_because" in out[0]["unsigned"]
            assert out[-2]["unsigned"]["prev_content"] == {"topic": f"t{n - 2}"}
            return calls

        small, large = await page_cost(5), await page_cost(40)
        # Not more for 8x the events (fewer is fine: rows of immutable facts, such as a
        # member event's membership, are cached after the first page).
        assert 0 < large <= small, (small, large)


@contextlib.contextmanager
def _relation_reads(db: Any) -> Iterator[list[int]]:
    """Counts the reads of ``event_relations`` made through ``db`` meanwhile (in a
    one-element list, updated in place)."""
    count = [0]
    original = db.fetchall

    async def counting(sql, *args, **kwargs):  # type: ignore[no-untyped-def]
        count[0] += "event_relations" in sql
        return await original(sql, *args, **kwargs)

    db.fetchall = counting
    try:
        yield count
    finally:
        db.fetchall = original


async def test_no_relations_is_remembered_until_a_relation_arrives(
        database_config: DatabaseConfig) -> None:
    """An event without relations is not asked about again (most messages), and an edit,
    reply in thread or reference persisted later shows up at once."""
    async with server_with_users(database_config, "alice", "bob") as (client, users):
        alice, bob = users
        room = Room(client, room_id("norel"))
        await room.create(alice, bob)
        root = (await room.add(room.msg(alice, "root")))[0]
        serializer = client.services.timeline.serializer
        viewer = Viewer(alice.user_id, alice.device_id)

        async def relations() -> dict:
            out = await serializer.serialize([root], viewer)
            return out[0]["unsigned"].get("m.relations", {})

        assert await relations() == {}
        with _relation_reads(client.services.db) as reads:
            assert await relations() == {}
            assert reads == [0]  # remembered: no relation reads
        await room.add(room.relation(alice, root.event_id, "m.replace", "edited"))
        assert set(await relations()) == {"m.replace"}
        await room.add(room.relation(bob, root.event_id, "m.thread", "reply"))
        assert set(await relations()) == {"m.replace", "m.thread"}


async def test_a_message_just_sent_is_served_without_relation_reads(
        database_config: DatabaseConfig) -> None:
    """A client's send makes a fresh event nothing can relate to yet: the syncs it wakes
    serialize it without reading relations; an edit sent next still shows up."""
    from tests.server.harness import running_server
    from tests.sync.helpers import new_user, timeline

    async with running_server(database_config) as hs:
        alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
        room = await alice.create_room()
        await bob.join(room)
        since = (await bob.sync())["next_batch"]
        root = await alice.send(room, "root")
        with _relation_reads(hs.services.db) as reads:
            body = await bob.sync(since)
            assert [e["event_id"] for e in timeline(body, room)] == [root]
            assert reads == [0]
        await alice.send(room, "* edited", **{
            "m.new_content": {"msgtype": "m.text", "body": "edited"},
            "m.relates_to": {"rel_type": "m.replace", "event_id": root}})
        pdus = list((await hs.services.events.get_events([root])).values())
        served = await hs.services.timeline.serializer.serialize(pdus, None)
        assert set(served[0]["unsigned"]["m.relations"]) == {"m.replace"}
