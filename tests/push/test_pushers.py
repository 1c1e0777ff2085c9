"""GET /pushers and POST /pushers/set: create, update, append, delete, validation, and
removal with the device that created them."""

from __future__ import annotations

from typing import Any

from tests.rooms.helpers import new_user
from tests.server.harness import running_server

from hs.storage.database import DatabaseConfig

URL = "https://push.example.org/_matrix/push/v1/notify"


def _pusher(pushkey: str = "key1", **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "http", "app_id": "im.vector.app.android", "pushkey": pushkey,
        "app_display_name": "Element", "device_display_name": "Phone", "lang": "en",
        "profile_tag": "tag", "data": {"url": URL, "format": "event_id_only"},
    }
    body.update(over)
    return body


async def test_set_list_update_delete(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        bob = await new_user(hs, "bob")
        assert await alice.call("GET", "/pushers") == (200, {"pushers": []})
        assert (await alice.call("POST", "/pushers/set", _pusher()))[0] == 200
        status, body = await alice.call("GET", "/pushers")
        assert status == 200
        assert body["pushers"] == [{
            "pushkey": "key1", "kind": "http", "app_id": "im.vector.app.android",
            "app_display_name": "Element", "device_display_name": "Phone", "lang": "en",
            "profile_tag": "tag", "data": {"url": URL, "format": "event_id_only"}}]
        # Same (app_id, pushkey): updated in place.
        assert (await alice.call("POST", "/pushers/set",
                                 _pusher(device_display_name="Tablet")))[0] == 200
        status, body = await alice.call("GET", "/pushers")
        assert [p["device_display_name"] for p in body["pushers"]] == ["Tablet"]
        # Another user takes the pushkey: without append alice's pusher goes...
        assert (await bob.call("POST", "/pushers/set", _pusher()))[0] == 200
        assert (await alice.call("GET", "/pushers"))[1] == {"pushers": []}
        # ...with append both keep it.
        assert (await alice.call("POST", "/pushers/set", _pusher(append=True)))[0] == 200
        assert len((await alice.call("GET", "/pushers"))[1]["pushers"]) == 1
        assert len((await bob.call("GET", "/pushers"))[1]["pushers"]) == 1
        # Email pusher.
        email = _pusher("alice@example.org", kind="email", app_id="m.email", data={})
        assert (await alice.call("POST", "/pushers/set", email))[0] == 200
        assert len((await alice.call("GET", "/pushers"))[1]["pushers"]) == 2
        # kind null deletes.
        assert (await alice.call("POST", "/pushers/set", _pusher(kind=None)))[0] == 200
        status, body = await alice.call("GET", "/pushers")
        assert [p["kind"] for p in body["pushers"]] == ["email"]
        assert len((await bob.call("GET", "/pushers"))[1]["pushers"]) == 1


async def test_invalid_pushers(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        minimal = {"kind": "http", "app_id": "a", "pushkey": "k"}
        cases: list[tuple[dict[str, Any], str]] = [
            ({"app_id": "a", "pushkey": "k"}, "M_MISSING_PARAM"),
            ({"kind": "http", "pushkey": "k"}, "M_MISSING_PARAM"),
            (minimal, "M_MISSING_PARAM"),
            (_pusher(kind="carrier-pigeon"), "M_INVALID_PARAM"),
            (_pusher(data={}), "M_INVALID_PARAM"),
            (_pusher(data={"url": "ftp://x/_matrix/push/v1/notify"}), "M_INVALID_PARAM"),
            (_pusher(data={"url": "https://x.org/notify"}), "M_INVALID_PARAM"),
            (_pusher(data="nope"), "M_BAD_JSON"),
            (_pusher(app_id="a" * 65), "M_INVALID_PARAM"),
            (_pusher("k" * 513), "M_INVALID_PARAM"),
            (_pusher(lang=5), "M_BAD_JSON"),
            (_pusher(append="yes"), "M_BAD_JSON"),
            (_pusher("not-an-email", kind="email", app_id="m.email"), "M_INVALID_PARAM"),
        ]
        for body, errcode in cases:
            status, resp = await alice.call("POST", "/pushers/set", body)
            assert (status, resp["errcode"]) == (400, errcode), body
        assert (await alice.call("GET", "/pushers"))[1] == {"pushers": []}


async def test_pushers_removed_with_device(database_config: DatabaseConfig) -> None:
    async with running_server(database_config) as hs:
        alice = await new_user(hs, "alice")
        status, login = await hs.login("alice")
        assert status == 200
        phone_token = login["access_token"]
        status, _ = await hs.request("POST", "/_matrix/client/v3/pushers/set",
                                     _pusher("phone"), token=phone_token)
        assert status == 200
        assert (await alice.call("POST", "/pushers/set", _pusher("laptop")))[0] == 200
        status, _ = await hs.request("POST", "/_matrix/client/v3/logout", {},
                                     token=phone_token)
        assert status == 200
        status, body = await alice.call("GET", "/pushers")
        assert [p["pushkey"] for p in body["pushers"]] == ["laptop"]
