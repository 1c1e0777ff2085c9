"""``/sync`` wake-up latency: send -> every long-poller has the message, on loopback.

Run with ``pytest bench/test_bench_sync.py -s`` (it prints p50/p99 and records them in the
test's ``user_properties``). Two scenarios, on SQLite and on PostgreSQL (a throwaway server
started by the test harness), one process:

* fan-out - ``POLLERS`` users long-poll in one shared room; each round one message must
  reach all of them (every poller woken and recomputing at once: the worst case);
* targeted - each poller has its own room with the sender; each round wakes one poller
  while the others keep waiting (what a busy server mostly sees).

Latency is measured from just before the sender's ``PUT /send`` to the moment each
poller's ``/sync`` response carrying that message has been read by the client. The
clients share the server's process and event loop, so their own request/JSON work is
included (the numbers are an upper bound for the server alone).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import tests.pg_harness
import uvloop
from tests.server.harness import Client, running_server
from tests.sync.helpers import User, new_user

from hs.storage.database import DatabaseConfig

POLLERS = 100
#: Messages per scenario: fan-out gives POLLERS samples per message, targeted one.
ROUNDS = {"fan-out": 20, "targeted": 200}


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _poll(user: User, token: str, room: str, seen: dict[str, float],
                stop: asyncio.Event) -> None:
    """Long-poll forever; note when each message body first arrives."""
    while not stop.is_set():
        body = await user.sync(token, timeout=30_000,
                               flt={"room": {"timeline": {"limit": 50}}})
        token = body["next_batch"]
        now = time.perf_counter()
        entry = body["rooms"].get("join", {}).get(room)
        if entry:
            for e in entry["timeline"]["events"]:
                text = e["content"].get("body")
                if isinstance(text, str):
                    seen.setdefault(f"{user.user_id} {text}", now)


async def _scenario(hs: Client, shared: bool) -> dict[str, float]:
    sender = await new_user(hs, f"sender{int(shared)}")
    pollers = [await new_user(hs, f"p{int(shared)}x{i}") for i in range(POLLERS)]
    rooms: list[str] = []
    if shared:
        room = await sender.create_room()
        rooms = [room] * POLLERS
        for p in pollers:
            await p.join(room)
    else:
        for p in pollers:
            room = await sender.create_room()
            await p.join(room)
            rooms.append(room)
    seen: dict[str, float] = {}
    stop = asyncio.Event()
    tokens = [(await p.sync(flt={"room": {"timeline": {"limit": 1}}}))["next_batch"]
              for p in pollers]
    tasks = [asyncio.create_task(_poll(p, t, r, seen, stop))
             for p, t, r in zip(pollers, tokens, rooms, strict=True)]
    await asyncio.sleep(0.5)
    latencies: list[float] = []
    for n in range(ROUNDS["fan-out" if shared else "targeted"]):
        targets = pollers if shared else [pollers[n % POLLERS]]
        target_rooms = [rooms[0]] if shared else [rooms[n % POLLERS]]
        text = f"round {n}"
        keys = [f"{p.user_id} {text}" for p in targets]
        started = time.perf_counter()
        await sender.send(target_rooms[0], text)
        while not all(k in seen for k in keys):
            await asyncio.sleep(0.0005)
        latencies += [(seen[k] - started) * 1000 for k in keys]
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"samples": len(latencies), "p50_ms": statistics.median(latencies),
            "p99_ms": _pct(latencies, 0.99), "max_ms": max(latencies)}


async def _measure(config: DatabaseConfig) -> dict[str, dict[str, float]]:
    # More connections than pollers: aiohttp's default pool (100) would queue sends.
    async with running_server(config) as hs, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)) as session:
        client = Client(session, hs.base, hs.services)
        results = {"fan-out": await _scenario(client, shared=True),
                   "targeted": await _scenario(client, shared=False)}
    return results


def _run(config: DatabaseConfig, request: Any) -> None:
    """On uvloop, as the server runs in production."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(_measure(config))
    for name, r in results.items():
        print(f"\n/sync wake-up ({config.dialect}), {POLLERS} long-pollers, {name}:"
              f" p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['max_ms']:.1f} ms"
              f" ({r['samples']} samples)")
        assert r["samples"] == (POLLERS if name == "fan-out" else 1) * ROUNDS[name]
    request.node.user_properties.append((f"sync_wakeup_{config.dialect}", results))


def test_sync_wakeup_latency_sqlite(tmp_path: Path, request: Any) -> None:
    _run(DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp_path / "hs.db")), request)


# The harness's PostgreSQL fixtures (bench/ is outside tests/, whose conftest loads them).
pg_server = tests.pg_harness.pg_server
fresh_pg_database = tests.pg_harness.fresh_pg_database
fresh_pg_config = tests.pg_harness.fresh_pg_config


def test_sync_wakeup_latency_postgres(fresh_pg_config: DatabaseConfig,
                                      request: Any) -> None:
    """A throwaway PostgreSQL server from the test harness (``tests/pg_harness.py``)."""
    _run(replace(fresh_pg_config, pool_max=20), request)
