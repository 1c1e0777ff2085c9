"""Sending: /send idempotency, limits, state PUT/GET, power levels, redactions, batching."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from tests.rooms.helpers import V3, new_user, q, state_event
from tests.server.harness import running_server

from hs.core.auth.identifiers import is_valid_user_id


async def test_send_idempotent_per_device(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room()
        status, first = await alice.send(room_id, "txn1")
        assert status == 200 and first["event_id"].startswith("$")
        status, again = await alice.send(room_id, "txn1", {"msgtype": "m.text", "body": "x"})
        assert (status, again) == (200, first)
        # Concurrent retries of a new txn ID all get the same event.
        results = await asyncio.gather(*(alice.send(room_id, "txn2") for _ in range(5)))
        assert len({r[1]["event_id"] for r in results}) == 1
        # Another device of the same user: its own transaction namespace.
        _, login = await hs.login("alice")
        status, other = await hs.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/txn1",
            {"msgtype": "m.text", "body": "hi"}, token=login["access_token"])
        assert status == 200 and other["event_id"] != first["event_id"]
        event = await hs.services.events.get_event(first["event_id"])
        assert event is not None and event.content["body"] == "hello"
        assert event.sender == alice.user_id and event.type == "m.room.message"


async def test_send_refusals(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room()
        status, err = await bob.send(room_id, "t")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN") and "room" in err["error"]
        status, err = await alice.send("!nope:test.local", "t")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        status, err = await alice.send(room_id, "big", {"body": "x" * 70_000})
        assert (status, err["errcode"]) == (413, "M_TOO_LARGE")
        # Fits as content, but not once wrapped in the signed event.
        status, err = await alice.send(room_id, "big2", {"body": "x" * 65_400})
        assert (status, err["errcode"]) == (413, "M_TOO_LARGE")
        status, err = await alice.send(room_id, "f", {"body": 1.5})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await alice.send(room_id, "t", event_type="x" * 300)
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await alice.put_state(room_id, "org.example", {}, "k" * 256)
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await alice.put_state(room_id, "org.example", {"v": "x" * 66_000})
        assert (status, err["errcode"]) == (413, "M_TOO_LARGE")
        status, err = await alice.call(
            "PUT", f"/rooms/{q(room_id)}/send/m.room.message/arr", [1, 2])
        assert status == 400 and err["errcode"] in ("M_NOT_JSON", "M_BAD_JSON")
        status, err = await hs.request(
            "PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/bigint",
            data=b'{"n": 9007199254740993}', token=alice.token,
            headers={"Content-Type": "application/json"})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        status, err = await hs.request("PUT", f"{V3}/rooms/{q(room_id)}/send/m.room.message/x", {})
        assert (status, err["errcode"]) == (401, "M_MISSING_TOKEN")


async def test_state_put_get_and_power_levels(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        carol = await new_user(hs, "carol")
        room_id = await alice.create_room(preset="public_chat", room_version="10")
        assert (await bob.join(room_id))[0] == 200
        status, resp = await alice.put_state(room_id, "m.room.name", {"name": "New"})
        assert status == 200
        status, content = await bob.call("GET", f"/rooms/{q(room_id)}/state/m.room.name/")
        assert (status, content) == (200, {"name": "New"})
        status, content = await bob.call("GET", f"/rooms/{q(room_id)}/state/m.room.name")
        assert (status, content) == (200, {"name": "New"})
        status, event = await bob.call(
            "GET", f"/rooms/{q(room_id)}/state/m.room.name/?format=event")
        assert status == 200 and event["event_id"] == resp["event_id"]
        assert event["sender"] == alice.user_id and event["state_key"] == ""
        # Not a member (never joined, not world readable): 403. Unknown key: 404.
        status, err = await carol.call("GET", f"/rooms/{q(room_id)}/state/m.room.name/")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.call("GET", f"/rooms/{q(room_id)}/state/m.room.avatar/")
        assert (status, err["errcode"]) == (404, "M_NOT_FOUND")
        # Power: bob (0) cannot set the name (50) nor change power levels.
        status, err = await bob.put_state(room_id, "m.room.name", {"name": "Bob's"})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, err = await bob.put_state(room_id, "m.room.power_levels", {"users": {}})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        # State keyed by another user's ID is refused; one's own is fine.
        status, _ = await bob.put_state(room_id, "org.example.s", {"a": 1}, alice.user_id)
        assert status == 403
        # Malformed power levels are the client's error.
        status, err = await alice.put_state(room_id, "m.room.power_levels", {"ban": "50"})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")  # v10: integers only
        status, err = await alice.put_state(room_id, "m.room.power_levels",
                                            {"users": {"nobody": 5}})
        assert (status, err["errcode"]) == (400, "M_BAD_JSON")
        pl = await state_event(hs, room_id, "m.room.power_levels")
        assert pl is not None
        content = dict(pl.content)
        content["users"] = {**content["users"], bob.user_id: 50}
        status, _ = await alice.put_state(room_id, "m.room.power_levels", content)
        assert status == 200
        status, _ = await bob.put_state(room_id, "m.room.name", {"name": "Bob's"})
        assert status == 200
        # Membership via the state endpoint: a per-room display name.
        status, _ = await bob.put_state(room_id, "m.room.member",
                                        {"membership": "join", "displayname": "B"}, bob.user_id)
        assert status == 200
        member = await state_event(hs, room_id, "m.room.member", bob.user_id)
        assert member is not None and member.content["displayname"] == "B"
        assert is_valid_user_id(member.state_key)


async def test_canonical_alias_must_point_here(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room(room_alias_name="home")
        other = await alice.create_room(room_alias_name="other")
        assert other != room_id
        for content in ({"alias": "#other:test.local"}, {"alias": "#missing:test.local"},
                        {"alt_aliases": ["#other:test.local"]}):
            status, err = await alice.put_state(room_id, "m.room.canonical_alias", content)
            assert (status, err["errcode"]) == (400, "M_BAD_ALIAS"), content
        status, err = await alice.put_state(room_id, "m.room.canonical_alias", {"alias": "x"})
        assert (status, err["errcode"]) == (400, "M_INVALID_PARAM")
        status, _ = await alice.put_state(room_id, "m.room.canonical_alias",
                                          {"alias": "#home:test.local", "alt_aliases": []})
        assert status == 200


@pytest.mark.parametrize("version", ["1", "10", "11"])
async def test_redaction(database_config, version):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(preset="public_chat", room_version=version)
        await bob.join(room_id)
        _, a_msg = await alice.send(room_id, "a1")
        _, b_msg = await bob.send(room_id, "b1")
        # bob may redact his own event, not alice's.
        status, err = await bob.call(
            "PUT", f"/rooms/{q(room_id)}/redact/{q(a_msg['event_id'])}/r1", {"reason": "no"})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, resp = await bob.call(
            "PUT", f"/rooms/{q(room_id)}/redact/{q(b_msg['event_id'])}/r2", {"reason": "oops"})
        assert status == 200
        redaction = await hs.services.events.get_event(resp["event_id"])
        assert redaction is not None and redaction.redacts == b_msg["event_id"]
        assert redaction.content["reason"] == "oops"
        if version == "11":
            assert redaction.content["redacts"] == b_msg["event_id"]
        else:
            assert redaction.data["redacts"] == b_msg["event_id"]
        meta = await hs.services.events.get_event_meta([b_msg["event_id"]])
        assert meta[b_msg["event_id"]].redacted_by == resp["event_id"]
        # Same txn ID: same redaction. The moderator may redact others' events.
        status, again = await bob.call(
            "PUT", f"/rooms/{q(room_id)}/redact/{q(b_msg['event_id'])}/r2", {"reason": "oops"})
        assert again == resp
        status, _ = await alice.call(
            "PUT", f"/rooms/{q(room_id)}/redact/{q(b_msg['event_id'])}/r3", {})
        assert status == 200


async def test_concurrent_burst_is_batched_and_linear(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room()
        pipeline = hs.services.rooms.pipeline
        tx_before, batches_before = pipeline.transactions, pipeline.writer.batches
        state_reads = 0
        real_read = hs.services.events.get_current_state_ids

        async def counting_read(*args, **kwargs):
            nonlocal state_reads
            state_reads += 1
            return await real_read(*args, **kwargs)

        hs.services.events.get_current_state_ids = counting_read  # type: ignore[method-assign]
        n = 200
        results = await asyncio.gather(*(
            alice.send(room_id, f"burst{i}", {"msgtype": "m.text", "body": str(i)})
            for i in range(n)))
        assert all(status == 200 for status, _ in results)
        ids = [r["event_id"] for _, r in results]
        assert len(set(ids)) == n
        transactions = pipeline.transactions - tx_before
        assert pipeline.writer.batches - batches_before == transactions
        assert transactions < n / 4, transactions
        # The writer remembers the state after its last event: a busy room's batches
        # read no state (the sender's membership is known from the first batch on).
        assert state_reads <= 1, state_reads
        print(f"{n} sends -> {transactions} transactions")
        # One forward extremity, and each event's only prev event is its predecessor.
        ext = await hs.services.events.get_forward_extremities(room_id)
        assert len(ext) == 1
        events = await hs.services.events.get_events_with_meta(ids)
        ordered = sorted(events.values(), key=lambda e: e[1].stream_ordering)
        for (prev, _), (pdu, _) in itertools.pairwise(ordered):
            assert pdu.prev_event_ids() == (prev.event_id,)
            assert pdu.depth == prev.depth + 1
        assert ordered[-1][0].event_id in ext


async def test_redaction_via_send_and_v12_create(database_config):
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        room_id = await alice.create_room(preset="public_chat")  # v12 by default
        await bob.join(room_id)
        _, a_msg = await alice.send(room_id, "a1")
        # v11+: a redaction through /send carries content.redacts; same permission rules.
        status, err = await bob.send(room_id, "r", {"redacts": a_msg["event_id"]},
                                     event_type="m.room.redaction")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        create = await state_event(hs, room_id, "m.room.create")
        assert create is not None
        status, err = await bob.call(
            "PUT", f"/rooms/{q(room_id)}/redact/{q(create.event_id)}/r2", {})
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
        status, event = await bob.call(
            "GET", f"/rooms/{q(room_id)}/state/m.room.create/?format=event")
        assert status == 200 and event["room_id"] == room_id
        assert event["event_id"] == create.event_id and event["content"]["room_version"] == "12"
        status, _ = await alice.send(room_id, "r3", {"redacts": a_msg["event_id"]},
                                     event_type="m.room.redaction")
        assert status == 200
        meta = await hs.services.events.get_event_meta([a_msg["event_id"]])
        assert meta[a_msg["event_id"]].redacted_by is not None


async def test_metrics_count_persisted_events(database_config):
    async with running_server(database_config, enable_metrics=True) as hs:
        alice = await new_user(hs, "alice")
        room_id = await alice.create_room(preset="private_chat")
        for i in range(3):
            status, _ = await alice.send(room_id, f"m{i}")
            assert status == 200
        async with hs.session.get(hs.base + "/metrics") as resp:
            text = await resp.text()
        counts = {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
                  if line.startswith("hs_events_persisted_total")
                  or line.startswith("hs_event_persist_batches_total")}
        # createRoom's initial events plus three messages, all live; fewer batches than events.
        live = counts['hs_events_persisted_total{kind="live"}']
        assert live >= 3 + 5
        assert 1 <= counts["hs_event_persist_batches_total"] < live


async def test_retry_gets_the_original_event_even_when_it_would_now_be_refused(
        database_config):
    """A retry is answered with the event its first attempt created (deduplicated by
    the persister; the transaction ID is only read when the retry is refused), even once
    that user may no longer send there, and the room keeps working after a retried
    (deduplicated) send."""
    async with running_server(database_config) as hs:
        alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
        room_id = await alice.create_room(preset="public_chat")
        assert (await bob.join(room_id))[0] == 200
        events = hs.services.events
        lookups: list[str] = []
        real_lookup = events.event_id_for_txn

        async def lookup(user_id: str, device_id: str, room: str, txn_id: str) -> str | None:
            lookups.append(txn_id)
            return await real_lookup(user_id, device_id, room, txn_id)

        events.event_id_for_txn = lookup
        status, first = await bob.send(room_id, "b1")
        assert status == 200
        status, again = await bob.send(room_id, "b1")  # a plain retry: deduplicated
        assert (status, again) == (200, first)
        assert lookups == []  # no read on a send that goes through
        status, after = await alice.send(room_id, "a1")  # the room's tip is still right
        assert status == 200 and after["event_id"] != first["event_id"]
        assert (await bob.member_op("leave", room_id))[0] == 200
        status, late = await bob.send(room_id, "b1")
        assert (status, late) == (200, first)
        assert lookups == ["b1"]  # refused (he left): the earlier use was read
        status, err = await bob.send(room_id, "b2")
        assert (status, err["errcode"]) == (403, "M_FORBIDDEN")
