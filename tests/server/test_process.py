"""The real ``python -m hs run`` process: CLI registration, SIGKILL durability, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import urllib.request
from pathlib import Path

import aiohttp
from tests.server.procs import SERVER_NAME, ServerProcess, run_cli, write_config

from hs.storage.database import open_database


def _post(url: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_register_user_cli_against_running_server(tmp_path: Path, database_config):
    config_path, port = write_config(tmp_path, database_config, enable_registration=False)
    server = ServerProcess(config_path, port)
    try:
        result = run_cli("register-user", "-c", str(config_path), "-u", "boss", "-p", "pw",
                         "--admin", server.base)
        assert result.returncode == 0, result.stderr
        assert f"@boss:{SERVER_NAME}" in result.stdout
        status, login = _post(server.base + "/_matrix/client/v3/login", {
            "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "boss"},
            "password": "pw"})
        assert status == 200 and login["user_id"] == f"@boss:{SERVER_NAME}"
        # Admin flag took effect: the admin-only API answers.
        req = urllib.request.Request(server.base + "/_synapse/admin/v1/registration_tokens",
                                     headers={"Authorization": f"Bearer {login['access_token']}"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert json.loads(resp.read()) == {"registration_tokens": []}
        bad = run_cli("register-user", "-k", "wrong-secret", "-u", "x", "-p", "pw",
                      "--no-admin", server.base)
        assert bad.returncode == 1 and "HMAC incorrect" in bad.stderr
    finally:
        server.stop()


async def _write_load(base: str, workers: int, per_worker: int,
                      acked: dict[str, set[str]]) -> None:
    """Register users and set display names concurrently.

    ``acked[user_id]`` is the set of display names the database may hold for that user: the
    acknowledged one, plus one whose update was in flight (it may or may not have committed).
    """

    async def worker(n: int, session: aiohttp.ClientSession) -> None:
        for i in range(per_worker):
            name = f"w{n}u{i}"
            body = {"username": name, "password": "pw"}
            try:
                async with session.post(base + "/_matrix/client/v3/register", json=body) as r:
                    challenge = await r.json()
                body["auth"] = {"type": "m.login.dummy", "session": challenge["session"]}
                async with session.post(base + "/_matrix/client/v3/register", json=body) as r:
                    if r.status != 200:
                        continue
                    token = (await r.json())["access_token"]
                user_id = f"@{name}:{SERVER_NAME}"
                acked[user_id] = {name}  # registration acknowledged; name defaults to localpart
                display = f"Display {name}"
                acked[user_id].add(display)  # in flight: either value is correct
                async with session.put(
                        f"{base}/_matrix/client/v3/profile/@{name}:{SERVER_NAME}/displayname",
                        json={"displayname": display},
                        headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status == 200:
                        acked[user_id] = {display}
            except (TimeoutError, aiohttp.ClientError, ValueError):
                return  # the server was killed under us

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(n, session) for n in range(workers)))


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, database_config):
    config_path, port = write_config(tmp_path, database_config)
    server = ServerProcess(config_path, port)
    acked: dict[str, set[str]] = {}
    try:
        async def load_then_kill() -> None:
            task = asyncio.ensure_future(_write_load(server.base, 8, 50, acked))
            deadline = time.monotonic() + 30
            while len(acked) < 8 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            server.signal(signal.SIGKILL)  # mid-stream, with requests in flight
            await task

        asyncio.run(load_then_kill())
        server.wait()
    finally:
        server.stop()
    assert acked, "no write was acknowledged before the kill"

    restarted = ServerProcess(config_path, port)
    try:
        for user_id, allowed in acked.items():
            with urllib.request.urlopen(
                    f"{restarted.base}/_matrix/client/v3/profile/{user_id}", timeout=10) as resp:
                profile = json.loads(resp.read())
            assert profile["displayname"] in allowed, (user_id, profile, allowed)
    finally:
        restarted.stop()

    async def consistency() -> None:
        db = await open_database(database_config)
        try:
            orphans = await db.fetchval(
                "SELECT COUNT(*) FROM access_tokens t LEFT JOIN devices d ON"
                " d.user_id = t.user_id AND d.device_id = t.device_id WHERE d.device_id IS NULL")
            assert orphans == 0
            no_user = await db.fetchval(
                "SELECT COUNT(*) FROM devices d LEFT JOIN users u ON u.user_id = d.user_id"
                " WHERE u.user_id IS NULL")
            assert no_user == 0
        finally:
            await db.close()

    asyncio.run(consistency())


def test_sigterm_finishes_in_flight_requests(tmp_path: Path, database_config):
    """Requests being handled when SIGTERM arrives (here: hashing passwords) still complete;
    then the process exits 0 and stops listening."""
    config_path, port = write_config(tmp_path, database_config)
    server = ServerProcess(config_path, port)
    url = server.base + "/_matrix/client/v3/register"

    async def scenario() -> tuple[float, list[tuple[int, float]]]:
        async with aiohttp.ClientSession() as session:
            bodies = []
            # Enough hashes (two at a time, a few ms each) to still be running when the
            # signal arrives.
            for i in range(40):
                body = {"username": f"term{i}", "password": "pw"}
                async with session.post(url, json=body) as resp:
                    body["auth"] = {"type": "m.login.dummy",
                                    "session": (await resp.json())["session"]}
                bodies.append(body)

            async def finish(body: dict) -> tuple[int, float]:
                async with session.post(url, json=body) as resp:
                    await resp.read()
                    return resp.status, time.monotonic()

            tasks = [asyncio.ensure_future(finish(b)) for b in bodies]
            await asyncio.sleep(0.1)  # the requests are now being handled
            server.signal(signal.SIGTERM)
            signalled = time.monotonic()
            return signalled, await asyncio.gather(*tasks)

    try:
        signalled, results = asyncio.run(scenario())
        assert [status for status, _ in results] == [200] * 40
        assert max(t for _, t in results) > signalled, "nothing was in flight at SIGTERM"
        assert server.wait(timeout=30) == 0
        assert "Shutdown complete" in server.output()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            pass
        else:
            raise AssertionError("still accepting connections after shutdown")
    finally:
        server.stop()


def test_port_db_cli(tmp_path: Path, fresh_pg_config):
    """``hs port-db`` moves accounts from a SQLite file into the configured PostgreSQL."""
    from hs.storage.accounts import AccountStore
    from hs.storage.database import DatabaseConfig

    sqlite = DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "old.db"))

    async def seed() -> None:
        db = await open_database(sqlite)
        try:
            await AccountStore(db).register_user(f"@old:{SERVER_NAME}", None, 1,
                                                 displayname="Old Timer")
        finally:
            await db.close()

    asyncio.run(seed())
    config_path, _port = write_config(tmp_path, fresh_pg_config)
    result = run_cli("port-db", "--sqlite", sqlite.sqlite_path, "-c", str(config_path))
    assert result.returncode == 0, result.stderr

    async def check() -> None:
        db = await open_database(fresh_pg_config)
        try:
            profile = await AccountStore(db).get_profile(f"@old:{SERVER_NAME}")
            assert profile == {"displayname": "Old Timer"}
        finally:
            await db.close()

    asyncio.run(check())


def test_port_in_use_is_reported(tmp_path: Path):
    from hs.storage.database import DatabaseConfig

    sqlite = DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db"))
    config_path, port = write_config(tmp_path, sqlite)
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = run_cli("run", "-c", str(config_path))
    assert result.returncode == 1
    assert "cannot listen" in result.stderr and "Traceback" not in result.stderr
