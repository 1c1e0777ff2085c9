"""Filters: upload/download over HTTP, validation, matching, event_fields, resolution."""

from __future__ import annotations

import pytest
from tests.timeline.helpers import V3, q, server_with_users

from hs.handlers.filters import (
    Filter,
    RoomEventFilter,
    apply_event_fields,
    parse_filter,
    parse_room_event_filter,
)
from hs.http.errors import MatrixError
from hs.storage.database import DatabaseConfig

SAMPLE = {
    "room": {"state": {"types": ["m.room.*"], "not_rooms": ["!726s6s6q:example.com"]},
             "timeline": {"limit": 10, "types": ["m.room.message"],
                          "not_senders": ["@spam:example.com"]},
             "ephemeral": {"types": ["m.receipt", "m.typing"]}},
    "presence": {"types": ["m.presence"], "not_senders": ["@alice:example.com"]},
    "event_format": "client",
    "event_fields": ["type", "content", "sender"],
}


async def test_upload_and_get(database_config: DatabaseConfig) -> None:
    async with server_with_users(database_config, "alice", "bob") as (client, users):
        alice, bob = users
        path = f"{V3}/user/{q(alice.user_id)}/filter"
        status, body = await client.request("POST", path, SAMPLE, token=alice.token)
        assert status == 200, body
        fid = body["filter_id"]
        assert isinstance(fid, str) and not fid.startswith("{")
        status, got = await client.request("GET", f"{path}/{fid}", token=alice.token)
        assert (status, got) == (200, SAMPLE)
        # The same filter again: the same ID; another one: a new ID.
        _, again = await client.request("POST", path, SAMPLE, token=alice.token)
        assert again["filter_id"] == fid
        _, other = await client.request("POST", path, {"room": {"timeline": {"limit": 5}}},
                                        token=alice.token)
        assert other["filter_id"] != fid
        # Filters are per user.
        _, bobs = await client.request("POST", f"{V3}/user/{q(bob.user_id)}/filter", {},
                                       token=bob.token)
        status, _ = await client.request(
            "GET", f"{V3}/user/{q(bob.user_id)}/filter/{other['filter_id']}", token=bob.token)
        assert bobs["filter_id"] == "0" and other["filter_id"] == "1" and status == 404

        # The stored filter resolves for sync by ID, inline JSON too.
        resolved = await client.services.filters.resolve(alice.user_id, fid)
        assert resolved.room.timeline.limit == 10
        inline = await client.services.filters.resolve(alice.user_id, '{"room":{"rooms":[]}}')
        assert inline.room.rooms == []
        with pytest.raises(MatrixError) as err:
            await client.services.filters.resolve(alice.user_id, "999")
        assert err.value.errcode == "M_INVALID_PARAM"
        # Resolved once, kept: a stored filter never changes (Element syncs by ID).
        handler = client.services.filters
        reads: list[object] = []
        real = handler.store.get_filter

        async def counted(*args: object) -> str | None:
            reads.append(args)
            return await real(*args)  # type: ignore[arg-type]

        handler.store.get_filter = counted  # type: ignore[method-assign]
        assert await handler.resolve(alice.user_id, fid) is resolved
        assert await handler.resolve(alice.user_id, '{"room":{"rooms":[]}}') is inline
        assert reads == []
        # Per user: bob's filter 1 is not alice's (he has none).
        with pytest.raises(MatrixError):
            await handler.resolve(bob.user_id, other["filter_id"])
        assert len(reads) == 1

        # Unhappy paths.
        cases = [
            ("POST", path, {"room": {"timeline": {"types": "m.room.message"}}}, alice, 400,
             "M_BAD_JSON"),
            ("POST", path, {"event_format": "xml"}, alice, 400, "M_BAD_JSON"),
            ("POST", path, {"room": {"timeline": {"limit": -1}}}, alice, 400, "M_BAD_JSON"),
            ("POST", path, {"room": {"timeline": {"senders": ["alice"]}}}, alice, 400,
             "M_BAD_JSON"),
            ("POST", path, {"room": {"rooms": ["#alias:x"]}}, alice, 400, "M_BAD_JSON"),
            ("POST", path, {"room": []}, alice, 400, "M_BAD_JSON"),
            ("POST", path, {}, bob, 403, "M_FORBIDDEN"),
            ("GET", f"{path}/{fid}", None, bob, 403, "M_FORBIDDEN"),
            ("GET", f"{path}/12345", None, alice, 404, "M_NOT_FOUND"),
            ("GET", f"{path}/abc", None, alice, 404, "M_NOT_FOUND"),
        ]
        for method, url, body, user, code, errcode in cases:
            status, resp = await client.request(method, url, body, token=user.token)
            assert (status, resp["errcode"]) == (code, errcode), (url, body, resp)
        status, resp = await client.request("POST", path, data=b"{nope", token=alice.token)
        assert (status, resp["errcode"]) == (400, "M_NOT_JSON")
        status, resp = await client.request("POST", path, {})
        assert status == 401


def test_matching() -> None:
    flt = parse_room_event_filter({
        "types": ["m.room.*", "org.*.thing"], "not_types": ["m.room.member"],
        "senders": ["@a:x", "@b:x"], "not_senders": ["@b:x"], "not_rooms": ["!no:x"],
    })
    ev = {"type": "m.room.message", "sender": "@a:x", "room_id": "!r:x", "content": {}}
    assert flt.matches(ev)
    assert flt.matches({**ev, "type": "org.foo.bar.thing"})
    assert not flt.matches({**ev, "type": "m.room.member"})
    assert not flt.matches({**ev, "type": "m.reaction"})
    assert not flt.matches({**ev, "sender": "@b:x"})
    assert not flt.matches({**ev, "sender": "@c:x"})
    assert not flt.matches({**ev, "room_id": "!no:x"})
    # SQL gets what it can evaluate; inner globs stay in Python.
    sql = flt.storage_filter()
    assert sql is not None and sql.types is None and sql.senders == ["@a:x", "@b:x"]
    assert flt.needs_python
    url = RoomEventFilter(contains_url=True)
    assert url.matches({**ev, "content": {"url": "mxc://a/b"}})
    assert not url.matches(ev)
    assert RoomEventFilter(contains_url=False).matches(ev)
    assert RoomEventFilter().storage_filter() is None
    assert parse_room_event_filter({"types": []}).matches(ev) is False


def test_parse_filter_and_fields() -> None:
    f = parse_filter(SAMPLE)
    assert isinstance(f, Filter) and f.event_fields == ["type", "content", "sender"]
    assert f.room.timeline.limit == 10 and f.room.state.not_rooms == ["!726s6s6q:example.com"]
    assert f.presence.matches({"type": "m.presence", "sender": "@bob:example.com"})
    assert not f.presence.matches({"type": "m.presence", "sender": "@alice:example.com"})
    assert parse_filter({"room": {"timeline": {"limit": 10**6}}}).room.timeline.limit == 1000
    assert parse_filter({}).room.allows_room("!any:x")
    assert not parse_filter({"room": {"not_rooms": ["!a:x"]}}).room.allows_room("!a:x")
    event = {"type": "m.room.message", "sender": "@a:x",
             "content": {"body": "hi", "msgtype": "m.text", "a.b": 1}, "unsigned": {}}
    assert apply_event_fields(event, ["content.body", "type", "missing.field"]) == {
        "content": {"body": "hi"}, "type": "m.room.message"}
    assert apply_event_fields(event, [r"content.a\.b"]) == {"content": {"a.b": 1}}
    for bad in ({"event_fields": "type"}, {"presence": {"limit": "5"}},
                {"room": {"include_leave": "yes"}}, {"room": {"state": {"lazy_load_members":
                                                                        1}}}):
        with pytest.raises(MatrixError) as err:
            parse_filter(bad)
        assert err.value.errcode == "M_BAD_JSON"
