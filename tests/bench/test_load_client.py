"""The load client against a tiny fake server: unsupported detection, 429 retry, dummy auth."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from bench.load.client import Client, MatrixError, Unsupported
from bench.load.runner import Status, TargetRun, run_scenario
from bench.load.scenarios import Plan, is_unsupported


async def _with_server(routes: Callable[[web.Application], None],
                       body: Callable[[str], Awaitable[Any]]) -> Any:
    app = web.Application()
    routes(app)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        return await asyncio.wait_for(body(f"http://127.0.0.1:{port}"), 30)
    finally:
        await runner.cleanup()


def _fake_routes(app: web.Application) -> None:
    state = {"429": 0}

    async def register(request: web.Request) -> web.Response:
        body = await request.json()
        if "auth" not in body:
            return web.json_response({"session": "s1", "flows": [{"stages": ["m.login.dummy"]}]},
                                     status=401)
        assert body["auth"] == {"type": "m.login.dummy", "session": "s1"}
        return web.json_response({"user_id": f"@{body['username']}:x", "access_token": "t"})

    async def create_room(request: web.Request) -> web.Response:
        return web.json_response({"errcode": "M_UNRECOGNIZED", "error": "nope"}, status=404)

    async def busy(request: web.Request) -> web.Response:
        state["429"] += 1
        if state["429"] < 3:
            return web.json_response({"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 10},
                                     status=429)
        return web.json_response({"ok": True})

    async def forbidden(request: web.Request) -> web.Response:
        return web.json_response({"errcode": "M_FORBIDDEN", "error": "no"}, status=403)

    app.router.add_post("/_matrix/client/v3/register", register)
    app.router.add_post("/_matrix/client/v3/createRoom", create_room)
    app.router.add_get("/busy", busy)
    app.router.add_get("/forbidden", forbidden)


def test_client_against_fake_server() -> None:
    async def body(url: str) -> None:
        client = Client(url, connections=4)
        try:
            user = await client.register("alice", "pw")
            assert user.user_id == "@alice:x" and user.access_token == "t"
            with pytest.raises(Unsupported) as info:
                await client.create_room(user, "r")
            assert "createRoom" in info.value.endpoint
            with pytest.raises(Unsupported):  # aiohttp's plain 404 for unknown paths
                await client.sync(user)
            assert (await client.request("GET", "/busy"))[1] == {"ok": True}
            with pytest.raises(MatrixError) as err:
                await client.request("GET", "/forbidden")
            assert err.value.errcode == "M_FORBIDDEN"
        finally:
            await client.close()

    asyncio.run(_with_server(_fake_routes, body))


def test_unsupported_setup_marks_dependents_unsupported() -> None:
    """register works, createRoom is 404 M_UNRECOGNIZED: the rest is 'unsupported', no crash."""

    class FakeTarget:
        name, db, version = "fake", "sqlite", "0"
        pid = __import__("os").getpid()
        db_pid = None
        base_url = ""

    async def body(url: str) -> dict[str, Any]:
        plan = Plan.from_scale(0.05)
        run = TargetRun(FakeTarget(), plan, Client(url))  # type: ignore[arg-type]
        status = Status()
        try:
            for name in ("register", "create_rooms", "join", "wakeup"):
                await run_scenario(run, name, 1, status)
        finally:
            await run.client.close()
        return run.outcomes

    outcomes = asyncio.run(_with_server(_fake_routes, body))
    assert outcomes["register"][0]["status"] == "ok"
    assert outcomes["register"][0]["events"] == Plan.from_scale(0.05).users
    assert outcomes["create_rooms"][0]["status"] == "unsupported"
    assert outcomes["wakeup"][0]["status"] == "unsupported"


def test_is_unsupported_looks_inside_exception_groups() -> None:
    inner = Unsupported("GET /x")
    group = ExceptionGroup("g", [ValueError("a"), ExceptionGroup("h", [inner])])
    assert is_unsupported(group) is inner
    assert is_unsupported(ValueError("a")) is None
