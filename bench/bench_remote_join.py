"""Joining a remote room with N members (issue #6: "must not take minutes").

Run: ``PYTHONPATH=src:. python -m bench.bench_remote_join [--members N] [--db sqlite|postgres]
[--profile FILE]``

Two real hs servers in this process federate over TLS on 127.0.0.1 (the harness of
``tests/federation_rooms``). On server A a public room gets N members: users created
straight in A's account store, each joined through ``services.rooms.update_membership``
(real signed join events in A's DAG), ``--concurrency`` at a time. Then a user of B joins
the room by ID: make_join + send_join + verifying every hash and signature of the returned
state and auth chain + persisting. Reported: wall time and process CPU time of the join,
split into phases by timers wrapped around the functions the join calls
(``verify_pdus``: hashes, signatures and key lookups; ``persist_outliers`` and
``pipeline.persist``: the writes; ``send_join``: A's side of the request plus transfer).
``--profile`` dumps a cProfile of the join alone.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import pstats
import resource
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.federation_rooms.harness import Server, two_servers
from tests.federation_rooms.helpers import CS

import hs.handlers.federation.common as common_mod
import hs.handlers.federation.remote as remote_mod
from hs.handlers.auth import Requester
from hs.handlers.federation.verify import verify_pdus
from hs.storage.database import DatabaseConfig


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Phases:
    """Wall time spent inside wrapped coroutine functions (outermost call only)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), cpu()
            try:
                return await fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - t0
                self.cpu[name] += cpu() - c0
                self.calls[name] += 1
        return timed

    def wrap_sync(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0, c0 = time.perf_counter(), cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                self.wall[name] += time.perf_counter() - t0
                self.cpu[name] += cpu() - c0
                self.calls[name] += 1
        return timed


@contextlib.contextmanager
def patched(obj: Any, attr: str, value: Any) -> Any:
    old = getattr(obj, attr)
    setattr(obj, attr, value)
    try:
        yield
    finally:
        setattr(obj, attr, old)


async def populate(a: Server, members: int, concurrency: int) -> tuple[str, str]:
    """A public room on A with ``members`` joined users (creator included)."""
    services = a.services
    now = services.clock()
    users = [f"@m{i:05d}:{a.name}" for i in range(members)]
    for uid in users:
        await services.store.register_user(uid, None, now, displayname=f"Member {uid[2:7]}")

    def req(uid: str) -> Requester:
        return Requester(user_id=uid, device_id="BENCH", is_guest=False, admin=False,
                         token_hash="")

    room_id, _ = await services.rooms.create_room(
        req(users[0]), {"preset": "public_chat", "name": "big room"})

    async def join(uid: str) -> None:
        await services.rooms.update_membership(req(uid), room_id, uid, "join",
                                               ratelimit=False)

    rest = users[1:]
    for i in range(0, len(rest), concurrency):
        await asyncio.gather(*(join(u) for u in rest[i:i + concurrency]))
    return room_id, users[0]


async def run(db_a: DatabaseConfig, db_b: DatabaseConfig, tmp: Path, members: int,
              concurrency: int, profile: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"members": members}
    async with two_servers(db_a, db_b, tmp) as (a, b):
        t0 = time.perf_counter()
        room_id, _ = await populate(a, members, concurrency)
        out["populate_s"] = time.perf_counter() - t0
        out["state_on_a"] = len(await a.services.events.get_current_state_ids(room_id))
        _, bob_tok = await b.user("bob")

        phases = Phases()
        rm = b.services.rooms.remote
        assert rm is not None
        fc = rm.client
        orig_put = fc.put_json

        async def put_json(dest: str, path: str, *args: Any, **kw: Any) -> Any:
            if "/send_join/" in path:
                return await phases.wrap("send_join (A + transfer)", orig_put)(
                    dest, path, *args, **kw)
            return await orig_put(dest, path, *args, **kw)

        pipeline = b.services.rooms.pipeline
        prof = cProfile.Profile() if profile else None
        with contextlib.ExitStack() as stack:
            stack.enter_context(patched(remote_mod, "verify_pdus", phases.wrap(
                "verify_pdus (hashes+signatures+keys)", verify_pdus)))
            stack.enter_context(patched(remote_mod, "persist_outliers", phases.wrap(
                "persist_outliers (state+auth chain)", common_mod.persist_outliers)))
            stack.enter_context(patched(common_mod, "topological", phases.wrap_sync(
                "  of which topological() sort", common_mod.topological)))
            stack.enter_context(patched(pipeline, "persist", phases.wrap(
                "pipeline.persist (join + current state)", pipeline.persist)))
            stack.enter_context(patched(rm, "_make", phases.wrap("make_join", rm._make)))
            stack.enter_context(patched(fc, "put_json", put_json))
            stack.enter_context(patched(rm, "backfill", _no_backfill))
            keyring = rm.keyring
            stack.enter_context(patched(keyring, "get_verify_keys", phases.wrap(
                "keyring.get_verify_keys (any caller)", keyring.get_verify_keys)))
            t0, c0 = time.perf_counter(), cpu()
            if prof:
                prof.enable()
            status, resp = await b.call(
                "POST", f"{CS}/join/{quote(room_id)}?server_name={quote(a.name)}", {},
                token=bob_tok)
            if prof:
                prof.disable()
            out["join_wall_s"] = time.perf_counter() - t0
            out["join_cpu_s"] = cpu() - c0
        assert status == 200, resp
        state_b = await b.services.events.get_current_state_ids(room_id)
        out["state_on_b"] = len(state_b)
        out["phases"] = {k: (phases.wall[k], phases.cpu[k], phases.calls[k])
                         for k in phases.wall}
        if prof and profile:
            prof.dump_stats(profile)
            out["profile"] = profile
    return out


async def _no_backfill(*_args: Any, **_kw: Any) -> None:
    """History backfill runs after the join returns; kept out of the measurement."""


@contextlib.contextmanager
def databases(kind: str, tmp: Path) -> Iterator[tuple[DatabaseConfig, DatabaseConfig]]:
    """Two empty databases (SQLite files, or a throwaway PostgreSQL cluster from
    ``tests.pg_harness``); set up outside the event loop (the harness uses asyncio.run)."""
    if kind == "sqlite":
        yield (DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp / "a.db")),
               DatabaseConfig(dialect="sqlite", sqlite_path=str(tmp / "b.db")))
        return
    import itertools

    from tests.pg_harness import PgServer, _LocalCluster

    cluster = _LocalCluster()
    try:
        cluster.start()
        pg = PgServer(host="127.0.0.1", port=cluster.port, user="postgres", password=None,
                      admin_database="postgres", _counter=itertools.count())
        yield pg.config(pg.create_database()), pg.config(pg.create_database())
    finally:
        cluster.stop()


def measure(members: int, db: str = "sqlite", concurrency: int = 50,
            profile: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="hs-bench-join-") as d:
        tmp = Path(d)
        with databases(db, tmp) as (db_a, db_b):
            return asyncio.run(run(db_a, db_b, tmp, members, concurrency, profile))


PHASE_ORDER = ("make_join", "send_join (A + transfer)", "keyring.get_verify_keys (any caller)",
               "verify_pdus (hashes+signatures+keys)", "persist_outliers (state+auth chain)",
               "  of which topological() sort", "pipeline.persist (join + current state)")


def report(out: dict[str, Any]) -> str:
    lines = [
        f"members={out['members']} state events on A={out['state_on_a']} "
        f"on B after join={out['state_on_b']} (populate {out['populate_s']:.1f}s)",
        f"join: wall {out['join_wall_s']:.3f}s  process CPU {out['join_cpu_s']:.3f}s",
    ]
    order = {name: i for i, name in enumerate(PHASE_ORDER)}
    for name, (wall, cpu_s, calls) in sorted(out["phases"].items(),
                                             key=lambda kv: order.get(kv[0], 99)):
        lines.append(f"  {name:42s} wall {wall:7.3f}s  cpu {cpu_s:7.3f}s  calls {calls}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--members", type=int, default=1000)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--concurrency", type=int, default=50,
                   help="joins on A in flight at once while populating")
    p.add_argument("--profile", help="write a cProfile of the join to this file")
    p.add_argument("--top", type=int, default=25, help="profile lines to print")
    args = p.parse_args(argv)
    out = measure(args.members, args.db, args.concurrency, args.profile)
    print(f"db={args.db}")
    print(report(out))
    if args.profile:
        pstats.Stats(args.profile).sort_stats("cumulative").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
