"""GET /_matrix/client/v1/rooms/{roomId}/hierarchy and the federation
GET /_matrix/federation/v1/hierarchy/{roomId}."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import User, new_user, q
from tests.server.harness import SERVER_NAME, running_server

V1 = "/_matrix/client/v1"


async def hierarchy(user: User, room_id: str, **params: Any) -> tuple[int, Any]:
    query = "&".join(f"{k}={q(str(v))}" for k, v in params.items())
    path = f"{V1}/rooms/{q(room_id)}/hierarchy" + (f"?{query}" if query else "")
    return await user.hs.request("GET", path, token=user.token)


async def add_child(user: User, space: str, child: str, **content: Any) -> None:
    content.setdefault("via", [SERVER_NAME])
    status, body = await user.put_state(space, "m.space.child", content, state_key=child)
    assert status == 200, body


async def build_tree(alice: User) -> dict[str, str]:
    """root (public space) -> a (public, order "1"), b (private, suggested, order "2"),
    sub (public space, order "3") -> c (public); plus a child event without via."""
    space = {"type": "m.space"}
    rooms = {
        "root": await alice.create_room(preset="public_chat", name="Root",
                                        creation_content=space),
        "a": await alice.create_room(preset="public_chat", name="A", topic="about A"),
        "b": await alice.create_room(preset="private_chat", name="B"),
        "sub": await alice.create_room(preset="public_chat", name="Sub",
                                       creation_content=space),
        "c": await alice.create_room(preset="public_chat", name="C"),
        "gone": await alice.create_room(preset="public_chat", name="Gone"),
    }
    await add_child(alice, rooms["root"], rooms["a"], order="1")
    await add_child(alice, rooms["root"], rooms["b"], order="2", suggested=True)
    await add_child(alice, rooms["root"], rooms["sub"], order="3")
    await add_child(alice, rooms["root"], rooms["gone"], via=[])
    await add_child(alice, rooms["sub"], rooms["c"], suggested=True)
    return rooms


def names(body: dict[str, Any]) -> list[str]:
    return [r.get("name") for r in body["rooms"]]


async def test_nested_walk_and_visibility(database_config) -> None:
    async with running_server(database_config) as hs:
        alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
        rooms = await build_tree(alice)
        status, body = await hierarchy(alice, rooms["root"])
        assert status == 200, body
        assert names(body) == ["Root", "A", "B", "Sub", "C"]
        assert "next_batch" not in body
        root = body["rooms"][0]
        assert root["room_type"] == "m.space" and root["join_rule"] == "public"
        assert root["num_joined_members"] == 1 and root["world_readable"] is False
        kids = {e["state_key"]: e for e in root["children_state"]}
        assert set(kids) == {rooms["a"], rooms["b"], rooms["sub"]}
        event = kids[rooms["a"]]
        assert event["type"] == "m.space.child" and event["sender"] == alice.user_id
        assert event["content"] == {"via": [SERVER_NAME], "order": "1"}
        assert isinstance(event["origin_server_ts"], int)
        assert body["rooms"][1]["topic"] == "about A" and body["rooms"][1]["children_state"] == []
        # Bob is in none of the rooms: the private room is hidden, public ones shown.
        status, body = await hierarchy(bob, rooms["root"])
        assert status == 200 and names(body) == ["Root", "A", "Sub", "C"]
        # Invited: visible.
        status, _ = await alice.member_op("invite", rooms["b"], {"user_id": bob.user_id})
        assert status == 200
        status, body = await hierarchy(bob, rooms["root"])
        assert names(body) == ["Root", "A", "B", "Sub", "C"]
        # A private root the user may not see: 403; an unknown room: 403 as well.
        status, body = await hierarchy(bob, rooms["b"] + "x")
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        carol = await new_user(hs, "carol")
        status, body = await hierarchy(carol, rooms["b"])
        assert status == 403 and body["errcode"] == "M_FORBIDDEN"
        status, body = await hierarchy(alice, rooms["b"])
        assert status == 200 and names(body) == ["B"]


async def test_restricted_child_needs_allowed_room(database_config) -> None:
    async with running_server(database_config) as hs:
        alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
        rooms = await build_tree(alice)
        restricted = await alice.create_room(room_version="10", name="R", initial_state=[{
            "type": "m.room.join_rules", "state_key": "",
            "content": {"join_rule": "restricted", "allow": [
                {"type": "m.room_membership", "room_id": rooms["a"]}]}}])
        await add_child(alice, rooms["c"], restricted)
        await add_child(alice, rooms["root"], rooms["c"], order="0")
        status, body = await hierarchy(bob, rooms["root"])
        assert names(body) == ["Root", "C", "A", "Sub"]
        status, _ = await bob.join(rooms["a"])
        assert status == 200
        status, body = await hierarchy(bob, rooms["root"])
        assert names(body) == ["Root", "C", "R", "A", "Sub"]
        entry = body["rooms"][2]
        assert entry["join_rule"] == "restricted" and entry["allowed_room_ids"] == [rooms["a"]]
        assert entry["room_version"] == "10"


async def test_max_depth_and_suggested_only(database_config) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        rooms = await build_tree(alice)
        status, body = await hierarchy(alice, rooms["root"], max_depth=0)
        assert status == 200 and names(body) == ["Root"]
        assert len(body["rooms"][0]["children_state"]) == 3
        status, body = await hierarchy(alice, rooms["root"], max_depth=1)
        assert names(body) == ["Root", "A", "B", "Sub"]
        assert body["rooms"][3]["children_state"][0]["state_key"] == rooms["c"]
        status, body = await hierarchy(alice, rooms["root"], suggested_only="true")
        assert names(body) == ["Root", "B"]
        status, body = await hierarchy(alice, rooms["sub"], suggested_only="true")
        assert names(body) == ["Sub", "C"]
        for bad in ({"max_depth": -1}, {"limit": 0}, {"limit": "x"},
                    {"suggested_only": "yes"}):
            status, body = await hierarchy(alice, rooms["root"], **bad)
            assert status == 400 and body["errcode"] == "M_INVALID_PARAM", bad


async def test_limit_and_pagination(database_config) -> None:
    async with running_server(database_config) as hs:
        alice, bob = await new_user(hs, "alice"), await new_user(hs, "bob")
        rooms = await build_tree(alice)
        seen: list[str] = []
        token = None
        pages = 0
        while True:
            params: dict[str, Any] = {"limit": 2}
            if token:
                params["from"] = token
            status, body = await hierarchy(alice, rooms["root"], **params)
            assert status == 200, body
            assert len(body["rooms"]) <= 2
            seen += names(body)
            pages += 1
            token = body.get("next_batch")
            if token is None:
                break
        assert seen == ["Root", "A", "B", "Sub", "C"] and pages == 3
        status, body = await hierarchy(alice, rooms["root"], limit=2)
        token = body["next_batch"]
        for params in ({"from": token, "max_depth": 1}, {"from": token, "suggested_only": "true"},
                       {"from": "garbage"}):
            status, err = await hierarchy(alice, rooms["root"], **params)
            assert status == 400 and err["errcode"] == "M_INVALID_PARAM", params
        status, err = await hierarchy(bob, rooms["root"], **{"from": token})
        assert status == 400
        status, err = await hierarchy(alice, rooms["sub"], **{"from": token})
        assert status == 400
        status, body = await hierarchy(alice, rooms["root"], limit=2, **{"from": token})
        assert status == 200 and names(body) == ["B", "Sub"]


class FakeFederationClient:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    async def get_json(self, destination: str, path: str, query: Any = None, **kw: Any) -> Any:
        self.calls.append((destination, path))
        answer = self.answers.get(destination)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_remote_children_via_federation(database_config, monkeypatch) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        root = await alice.create_room(preset="public_chat", name="Root",
                                       creation_content={"type": "m.space"})
        remote_space, remote_room, private = "!rs:far.test", "!rr:far.test", "!rp:far.test"
        await add_child(alice, root, remote_space, via=["down.test", "far.test"])
        child_ev = {"type": "m.space.child", "state_key": remote_room, "sender": "@x:far.test",
                    "content": {"via": ["far.test"]}, "origin_server_ts": 5}
        hidden_ev = dict(child_ev, state_key=private)
        answer = {
            "room": {"room_id": remote_space, "name": "Far space", "num_joined_members": 3,
                     "world_readable": False, "guest_can_join": False, "join_rule": "public",
                     "room_type": "m.space", "children_state": [child_ev, hidden_ev]},
            "children": [{"room_id": remote_room, "name": "Far room", "join_rule": "public",
                          "num_joined_members": 2, "world_readable": False,
                          "guest_can_join": False},
                         {"room_id": private, "name": "Hidden", "join_rule": "invite",
                          "num_joined_members": 2, "world_readable": False,
                          "guest_can_join": False}],
            "inaccessible_children": [],
        }
        fake = FakeFederationClient({"down.test": RuntimeError("down"), "far.test": answer})
        monkeypatch.setattr(hs.services.federation.client, "get_json", fake.get_json)
        status, body = await hierarchy(alice, root)
        assert status == 200, body
        assert names(body) == ["Root", "Far space", "Far room"]
        assert body["rooms"][1]["children_state"][0]["state_key"] == remote_room
        assert body["rooms"][2]["children_state"] == []
        assert [d for d, _ in fake.calls] == ["down.test", "far.test"]
        assert fake.calls[1][1] == "/_matrix/federation/v1/hierarchy/%21rs%3Afar.test"


async def test_federation_endpoint(database_config) -> None:
    from aiohttp.test_utils import TestClient, TestServer
    from tests.federation_sender.helpers import REMOTE, REMOTE_KEY, homeserver

    from hs.app import create_app
    from hs.core.x_matrix import sign_request

    async with homeserver(database_config) as hs:
        alice = await new_user(hs, "alice")
        rooms = await build_tree(alice)
        app = create_app(hs.services, frozenset({"federation"}))
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:

            async def fed(room_id: str, query: str = "", sign: bool = True) -> tuple[int, Any]:
                # Room IDs are sent unescaped ("!" and ":" are valid in a path), so the
                # signed URI is the one on the wire.
                path = f"/_matrix/federation/v1/hierarchy/{room_id}{query}"
                headers = {}
                if sign:
                    headers["Authorization"] = sign_request(REMOTE_KEY, REMOTE, SERVER_NAME,
                                                            "GET", path)
                resp = await client.get(path, headers=headers)
                return resp.status, await resp.json()

            status, body = await fed(rooms["root"])
            assert status == 200, body
            assert body["room"]["room_id"] == rooms["root"]
            assert len(body["room"]["children_state"]) == 3
            assert [c["name"] for c in body["children"]] == ["A", "Sub"]
            assert all("children_state" not in c for c in body["children"])
            assert body["inaccessible_children"] == [rooms["b"]]
            status, body = await fed(rooms["root"], "?suggested_only=true")
            assert status == 200 and body["children"] == []
            assert body["inaccessible_children"] == [rooms["b"]]
            status, body = await fed(rooms["b"])
            assert status == 404 and body["errcode"] == "M_NOT_FOUND"
            status, body = await fed("!nope:test.local")
            assert status == 404
            status, body = await fed(rooms["root"], sign=False)
            assert status == 401
