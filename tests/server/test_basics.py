"""Discovery endpoints, error forms, CORS, health and metrics."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tests.server.harness import FAST_HASHER, make_config, running_server

from hs.app import Services, create_app
from hs.handlers.passwords import Passwords
from hs.storage.database import open_database


async def test_versions_and_cors(database_config):
    async with running_server(database_config) as hs:
        async with hs.session.get(hs.base + "/_matrix/client/versions") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("application/json")
            assert resp.headers["Access-Control-Allow-Origin"] == "*"
            assert "v1.1" in (await resp.json())["versions"]
        async with hs.session.options(hs.base + "/_matrix/client/v3/login") as resp:
            assert resp.status in (200, 204)
            assert "POST" in resp.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_unknown_endpoint_and_wrong_method(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("GET", "/_matrix/client/v3/no_such_thing")
        assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")
        status, body = await hs.request("PUT", "/_matrix/client/v3/login", {})
        assert (status, body["errcode"]) == (405, "M_UNRECOGNIZED")
        assert body["error"]


async def test_capabilities_needs_token(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("GET", "/_matrix/client/v3/capabilities")
        assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
        alice = await hs.register("alice")
        status, body = await hs.request("GET", "/_matrix/client/v3/capabilities",
                                        token=alice["access_token"])
        assert status == 200
        caps = body["capabilities"]
        assert caps["m.change_password"] == {"enabled": True}
        assert caps["m.room_versions"]["default"] == hs.services.config.default_room_version


async def test_wellknown(database_config):
    async with running_server(database_config) as hs:
        status, body = await hs.request("GET", "/.well-known/matrix/client")
        assert (status, body["errcode"]) == (404, "M_NOT_FOUND")
    async with running_server(database_config, public_baseurl="https://matrix.test.local",
                              serve_server_wellknown=True) as hs:
        status, body = await hs.request("GET", "/.well-known/matrix/client")
        assert body == {"m.homeserver": {"base_url": "https://matrix.test.local"}}
        status, body = await hs.request("GET", "/.well-known/matrix/server")
        assert body == {"m.server": "matrix.test.local:443"}


async def test_health_and_metrics(database_config):
    async with running_server(database_config, enable_metrics=True) as hs:
        async with hs.session.get(hs.base + "/health") as resp:
            assert resp.status == 200
            assert await resp.text() == "OK"
        await hs.request("GET", "/_matrix/client/v3/login")
        async with hs.session.get(hs.base + "/metrics") as resp:
            text = await resp.text()
        assert resp.status == 200
        assert 'endpoint="/_matrix/client/v3/login"' in text
        assert "hs_http_request_duration_seconds_bucket" in text
        assert "hs_db_pool_" in text


async def test_metrics_off_by_config(database_config):
    """``enable_metrics: false`` (the default): no /metrics, and prometheus_client unused."""
    async with running_server(database_config) as hs:
        assert hs.services.metrics is None
        async with hs.session.get(hs.base + "/health") as resp:
            assert resp.status == 200
        async with hs.session.get(hs.base + "/metrics") as resp:
            assert resp.status == 404
        status, _ = await hs.request("GET", "/_matrix/client/v3/login")
        assert status == 200


async def test_unexpected_exception_is_logged_500(database_config, caplog):


    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("kaboom")

    db = await open_database(database_config)
    services = await Services.build(make_config(), db, passwords=Passwords(0, FAST_HASHER))
    app = create_app(services)
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        resp = await client.get("/boom")
        assert resp.status == 500
        assert (await resp.json())["errcode"] == "M_UNKNOWN"
    await services.close()
    records = [r for r in caplog.records if "Unhandled error in GET /boom" in r.getMessage()]
    assert records and records[0].exc_info and "(request GET-" in records[0].getMessage()
