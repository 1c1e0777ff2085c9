"""Checks on receipt of PDUs: forged signatures, auth failures, gaps filled with
/get_missing_events (and the /state fallback past its limit), and bad requests."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from tests.federation_rooms.harness import Server, eventually, two_servers
from tests.federation_rooms.helpers import (
    FED,
    build_unsent,
    has_event,
    join_remote,
    membership,
    public_room,
    push,
    send_text,
)

from hs.federation.client import HttpResponseError, encode_path
from hs.handlers.federation import missing
from hs.storage.database import DatabaseConfig


async def _joined_pair(a: Server, b: Server) -> tuple[str, str, str, str]:
    _, alice_tok = await a.user("alice")
    bob, bob_tok = await b.user("bob")
    room_id = await public_room(a, alice_tok)
    await join_remote(b, bob_tok, room_id, a.name)
    await eventually(lambda: _joined(a, room_id, bob))
    return room_id, alice_tok, bob, bob_tok


async def _joined(server: Server, room_id: str, user: str) -> bool:
    return await membership(server, room_id, user) == "join"


async def test_forged_and_unauthorized_events_are_rejected(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        room_id, *_ = await _joined_pair(a, b)
        alice = f"@alice:{a.name}"
        # A bad signature: the event is dropped, the response says why.
        forged = await build_unsent(a, room_id, alice, {"msgtype": "m.text", "body": "x"})
        data = dict(forged.data)
        sig = dict(data["signatures"][a.name])
        kid = next(iter(sig))
        sig[kid] = ("A" if sig[kid][0] != "A" else "B") + sig[kid][1:]
        data["signatures"] = {a.name: sig}
        result = await push(a, b, [data])
        assert "signature" in result[forged.event_id]["error"]
        assert await b.services.events.get_event(forged.event_id) is None
        # Signed correctly but the sender is not in the room: rejected by the auth rules.
        intruder = await build_unsent(a, room_id, f"@mallory:{a.name}",
                                      {"msgtype": "m.text", "body": "let me in"})
        result = await push(a, b, [intruder.data])
        assert "error" in result[intruder.event_id]
        stored = await b.services.events.get_event(intruder.event_id)
        assert stored is not None and stored.rejected_reason is not None
        assert intruder.event_id not in await b.services.events.get_forward_extremities(
            room_id)
        # A content-hash mismatch with valid signatures: accepted, but redacted.
        good = await build_unsent(a, room_id, alice, {"msgtype": "m.text", "body": "secret"})
        tampered = {**good.data, "content": {"msgtype": "m.text", "body": "changed"}}
        result = await push(a, b, [tampered])
        assert result[good.event_id] == {}
        kept = await b.services.events.get_event(good.event_id)
        assert kept is not None and "body" not in kept.content
        # A retried transaction ID gets the same answer without reprocessing.
        client = a.services.federation.client
        body = {"origin": a.name, "origin_server_ts": 0, "pdus": [data], "edus": []}
        first = await client.put_json(b.name, FED + "/send/retry1", body)
        again = await client.put_json(b.name, FED + "/send/retry1", body)
        assert first == again


@pytest.mark.parametrize("many", [False, True], ids=["by_event", "by_state"])
async def test_gap_filled_with_get_missing_events_and_state(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, many: bool) -> None:
    if many:  # every missing state event counts as "many": one GET /state instead
        monkeypatch.setattr(missing, "MAX_SINGLE_FETCHES", 0)
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        room_id, alice_tok, _, _ = await _joined_pair(a, b)
        # A stops sending on its own: B only hears of what the test pushes.
        a.services.rooms.pipeline.on_persisted.remove(a.services.sender.on_persisted)
        ids = [await send_text(a, alice_tok, room_id, f"m{i}") for i in range(3)]
        last = (await a.services.events.get_events([ids[-1]]))[ids[-1]]
        result = await push(a, b, [last.data])
        assert result == {ids[-1]: {}}
        for eid in ids:  # the two earlier ones came from /get_missing_events
            assert await has_event(b, eid), eid
        assert await b.services.events.get_forward_extremities(room_id) == {ids[-1]}
        # A gap longer than one /get_missing_events round: the rest comes from /state.
        more = [await send_text(a, alice_tok, room_id, f"n{i}") for i in range(14)]
        tip = (await a.services.events.get_events([more[-1]]))[more[-1]]
        assert await push(a, b, [tip.data]) == {more[-1]: {}}
        assert await has_event(b, more[-1])
        assert not await has_event(b, more[0])  # never fetched into the DAG
        status, msgs = await b.client.request(
            "GET", "/_matrix/client/v3/rooms/" + quote(room_id) + "/messages?dir=b&limit=3",
            token=(await b.client.login("bob"))[1]["access_token"])
        assert status == 200 and msgs["chunk"][0]["event_id"] == more[-1]


async def test_bad_requests(database_config: DatabaseConfig,
                            second_database_config: DatabaseConfig, tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        room_id, *_ = await _joined_pair(a, b)
        client = b.services.federation.client
        # Unsigned request: 401.
        status, body = await a.client.request("PUT", FED + "/send/x", {"pdus": []})
        assert (status, body["errcode"]) == (401, "M_UNAUTHORIZED")

        async def expect(status: int, errcode: str, method: str, path: str,
                         body: object = None, query: dict | None = None) -> None:
            try:
                await client.request(method, a.name, path, content=body, query=query)
            except HttpResponseError as exc:
                assert (exc.status, exc.errcode) == (status, errcode), exc
                return
            raise AssertionError(f"{method} {path} succeeded")

        await expect(400, "M_BAD_JSON", "PUT", FED + "/send/big",
                     {"pdus": [{}] * 51, "edus": []})
        await expect(400, "M_BAD_JSON", "PUT", FED + "/send/bad", {"pdus": "nope"})
        await expect(400, "M_INCOMPATIBLE_ROOM_VERSION", "GET",
                     FED + "/make_join" + encode_path(room_id, f"@carol:{b.name}"),
                     query={"ver": ["1"]})
        await expect(403, "M_FORBIDDEN", "GET",
                     FED + "/make_join" + encode_path(room_id, f"@carol:{a.name}"),
                     query={"ver": ["12"]})
        await expect(404, "M_NOT_FOUND", "GET", FED + "/event/$nope")
        await expect(400, "M_BAD_JSON", "POST",
                     FED + "/get_missing_events" + encode_path(room_id),
                     {"earliest_events": "x", "latest_events": []})
        await expect(400, "M_MISSING_PARAM", "GET", FED + "/state_ids" + encode_path(room_id))
        await expect(404, "M_NOT_FOUND", "GET",
                     FED + "/state_ids" + encode_path("!unknown:example.org"),
                     query={"event_id": "$x"})
        await expect(400, "M_BAD_JSON", "PUT",
                     "/_matrix/federation/v2/send_join" + encode_path(room_id, "$x"),
                     {"type": "m.room.member"})
        await expect(400, "M_BAD_JSON", "PUT",
                     "/_matrix/federation/v2/invite" + encode_path(room_id, "$x"),
                     {"room_version": "12", "event": {"type": 5}})
        await expect(400, "M_INCOMPATIBLE_ROOM_VERSION", "PUT",
                     "/_matrix/federation/v2/invite" + encode_path(room_id, "$x"),
                     {"room_version": "99", "event": {}})
        await expect(404, "M_NOT_FOUND", "GET",
                     FED + "/make_join" + encode_path("!nowhere:x", f"@c:{b.name}"))
        await expect(400, "M_MISSING_PARAM", "GET", FED + "/backfill" + encode_path(room_id),
                     query={"v": "$x"})
        await expect(400, "M_NOT_JSON", "PUT", FED + "/send/empty")
        # A /send of a PDU for a room B does not know is ignored, not an error.
        resp = await a.services.federation.client.put_json(
            b.name, FED + "/send/unknown-room", {"pdus": [{"room_id": "!nope:x"}]})
        assert resp == {"pdus": {}}


async def test_fork_resolved_on_both_sides(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        room_id, alice_tok, _, bob_tok = await _joined_pair(a, b)
        for server in (a, b):  # each side sends without hearing the other
            server.services.rooms.pipeline.on_persisted.remove(
                server.services.sender.on_persisted)
        status, _ = await a.call(
            "PUT", "/_matrix/client/v3/rooms/" + quote(room_id) + "/state/m.room.topic/",
            {"topic": "from A"}, token=alice_tok)
        assert status == 200
        from_a = (await a.services.events.get_forward_extremities(room_id)).pop()
        from_b = await send_text(b, bob_tok, room_id, "concurrent")
        pa = (await a.services.events.get_events([from_a]))[from_a]
        pb = (await b.services.events.get_events([from_b]))[from_b]
        assert pa.prev_event_ids() == pb.prev_event_ids()  # a real fork
        assert await push(a, b, [pa.data]) == {from_a: {}}
        assert await push(b, a, [pb.data]) == {from_b: {}}
        for server in (a, b):
            assert await server.services.events.get_forward_extremities(room_id) == {
                from_a, from_b}
            topic = await server.services.events.get_current_state_ids(
                room_id, [("m.room.topic", "")])
            assert topic == {("m.room.topic", ""): from_a}
        # The next event cites both tips; the other side resolves their states.
        merged = await send_text(a, alice_tok, room_id, "merge")
        pm = (await a.services.events.get_events([merged]))[merged]
        assert set(pm.prev_event_ids()) == {from_a, from_b}
        assert await push(a, b, [pm.data]) == {merged: {}}
        assert await b.services.events.get_forward_extremities(room_id) == {merged}
        state = await b.services.events.get_state_ids_at(merged, before=True)
        assert state is not None and state[("m.room.topic", "")] == from_a


async def test_malformed_pdus_never_break_a_transaction(
        database_config: DatabaseConfig, second_database_config: DatabaseConfig,
        tmp_path: Path) -> None:
    async with two_servers(database_config, second_database_config, tmp_path) as (a, b):
        room_id, *_ = await _joined_pair(a, b)
        good = await build_unsent(a, room_id, f"@alice:{a.name}",
                                  {"msgtype": "m.text", "body": "fine"})
        base = dict(good.data)
        junk: list[object] = [
            None, 5, "pdu", [], {"room_id": 7}, {"room_id": room_id},
            {**base, "depth": -1}, {**base, "depth": "1"}, {**base, "content": []},
            {**base, "prev_events": "x"}, {**base, "auth_events": [1, 2]},
            {**base, "prev_events": ["$x"] * 21}, {**base, "sender": "nobody"},
            {**base, "state_key": 3}, {**base, "type": "x" * 300},
            {**base, "content": {"big": "x" * 70_000}}, {**base, "hashes": None},
            {**base, "signatures": {a.name: {"ed25519:x": "!!!"}}},
            {k: v for k, v in base.items() if k != "origin_server_ts"},
        ]
        result = await push(a, b, [*junk, base])
        assert result[good.event_id] == {}
        assert all("error" in r for eid, r in result.items() if eid != good.event_id)
        assert await has_event(b, good.event_id)


def test_strict_json_for_room_version() -> None:
    """rooms/v6: floats and integers beyond 2**53-1 make a PDU invalid; older versions
    keep them (they still cannot be signed canonically, so they fail later)."""
    from hs.core.room_versions import get_room_version
    from hs.handlers.federation.verify import BadPDU, check_format

    base = {"type": "m.room.message", "sender": "@a:x", "room_id": "!r:x", "content": {},
            "depth": 1, "origin_server_ts": 1, "prev_events": [], "auth_events": [],
            "hashes": {}, "signatures": {}}
    check_format(base, get_room_version("12"))
    for content in ({"n": 1.5}, {"n": 2**60}):
        with pytest.raises(BadPDU):
            check_format({**base, "content": content}, get_room_version("6"))
    with pytest.raises(BadPDU):
        check_format({**base, "prev_events": [["$a:x", {}]]}, get_room_version("12"))
    check_format({**base, "event_id": "$e:x", "prev_events": [["$a:x", {}]]},
                 get_room_version("1"))
