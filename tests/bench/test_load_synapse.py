"""Real servers: a private PostgreSQL cluster, and a short load run against Synapse.

Slow; the Synapse run is skipped unless its venv exists (HS_BENCH_INSTALL_SYNAPSE=1 lets the
harness create it from PyPI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest
from bench.load.runner import TargetRun, client_for, run_rounds, summarize
from bench.load.scenarios import ALL, Plan
from bench.load.targets import SynapseTarget
from bench.synapse_harness import DEFAULT_SYNAPSE_VENV, PrivatePostgres, _as_pg_user

pytestmark = pytest.mark.slow
TINY = Plan(users=4, rooms=2, senders=3, msgs_per_sender=3, msgs_per_room=3, syncers=2,
            readers=2, page_limit=5, pollers=4, wake_events=2, concurrency=4,
            targeted_pollers=1)


@pytest.mark.skipif(shutil.which("initdb") is None and not os.path.isdir("/usr/lib/postgresql"),
                    reason="PostgreSQL binaries not installed")
def test_private_postgres_gives_a_c_collated_database() -> None:
    pg = PrivatePostgres().start()
    root = pg.root
    try:
        pg.create_database("bench_c")
        out = subprocess.run(_as_pg_user([
            "psql", "-h", pg.host, "-p", str(pg.port), "-U", pg.user, "-d", "bench_c", "-At",
            "-c", "SELECT datcollate, datctype FROM pg_database WHERE datname = 'bench_c'"]),
            capture_output=True, text=True, check=True, timeout=30)
        assert out.stdout.strip() == "C|C"
        assert pg.postmaster_pid()
    finally:
        pg.stop()
    assert not root.exists()


@pytest.mark.skipif(not (DEFAULT_SYNAPSE_VENV / "bin" / "python").exists()
                    and not os.environ.get("HS_BENCH_INSTALL_SYNAPSE"),
                    reason=f"no Synapse venv at {DEFAULT_SYNAPSE_VENV}")
def test_short_run_against_synapse() -> None:
    target = SynapseTarget("sqlite").start()
    pid = target.pid
    try:
        async def measure() -> dict:
            run = TargetRun(target, TINY, client_for(target, TINY))
            try:
                await asyncio.wait_for(run_rounds([run], list(ALL), 1), 600)
            finally:
                await run.client.close()
            return summarize(run)

        results = asyncio.run(measure())
    finally:
        target.stop()
    assert not os.path.exists(f"/proc/{pid}")
    for name in ALL:
        assert results[name]["status"] == "ok", (name, results[name])
        assert results[name]["errors"] == 0, (name, results[name])
    assert results["register"]["events"] == TINY.users
    assert results["send_one_room"]["events"] == TINY.senders * TINY.msgs_per_sender
    assert results["send_many_rooms"]["events"] == TINY.rooms * TINY.msgs_per_room
    assert results["messages"]["events"] >= TINY.senders * TINY.msgs_per_sender
    assert results["initial_sync"]["rooms_per_sync"] == TINY.rooms + 1
    assert results["wakeup"]["missed"] == 0
    assert results["wakeup_targeted"]["missed"] == 0
    assert results["wakeup_targeted"]["pollers"] == 1
    assert results["wakeup"]["events"] == TINY.pollers * TINY.wake_events
    assert results["send_one_room"]["cpu_s"] > 0
    assert results["send_one_room"]["peak_rss_mb"] > 10
