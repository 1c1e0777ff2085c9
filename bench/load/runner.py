"""Drives scenarios against running targets: resource probes, A/B rounds, live status line."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from bench.load.client import Client
from bench.load.metrics import ResourceProbe, summarize_ms
from bench.load.scenarios import NEEDS, SCENARIOS, SETUP, Plan, Recorder, World, is_unsupported
from bench.load.targets import Target

#: A scenario that runs longer than this (scaled up past 50 users) is abandoned as an error.
SCENARIO_TIMEOUT = 900.0


class Status:
    """One live status line on stderr (a TTY), or a line every 10 s when piped to a log."""

    def __init__(self) -> None:
        self.label = ""
        self.rec: Recorder | None = None
        self.started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.tty = sys.stderr.isatty()

    def show(self, label: str, rec: Recorder) -> None:
        self.label, self.rec, self.started = label, rec, time.monotonic()

    def _line(self) -> str:
        rec = self.rec
        progress = f"{rec.done}/{rec.total or '?'} {rec.unit}" if rec else ""
        errors = f" errors={rec.errors}" if rec and rec.errors else ""
        return f"{self.label}: {progress}{errors} {time.monotonic() - self.started:.0f}s"

    async def _loop(self) -> None:
        last_print = 0.0
        while True:
            await asyncio.sleep(0.5)
            if not self.label:
                continue
            if self.tty:
                sys.stderr.write("\r\x1b[K" + self._line())
                sys.stderr.flush()
            elif time.monotonic() - last_print >= 10:
                last_print = time.monotonic()
                print(self._line(), file=sys.stderr, flush=True)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop())

    def done(self, message: str) -> None:
        if self.tty:
            sys.stderr.write("\r\x1b[K")
        print(message, file=sys.stderr, flush=True)
        self.label = ""

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


@dataclass
class TargetRun:
    """One running target with its client and world, and every outcome measured on it."""

    target: Target
    plan: Plan
    client: Client
    world: World = field(default_factory=World)
    outcomes: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    #: setup scenario -> its failed status, for the scenarios that need it
    blocked: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.target.name}/{self.target.db}"


async def run_scenario(run: TargetRun, name: str, round_no: int, status: Status) -> None:
    """Run one scenario once, recording an outcome; never raises for target problems."""
    fn, unit, total = SCENARIOS[name]
    need = NEEDS.get(name)
    outcome: dict[str, Any] = {"round": round_no, "unit": unit}
    if need in run.blocked:
        why = run.blocked[need]
        outcome.update(status=why if why == "unsupported" else "skipped",
                       detail=f"needs {need}, which was {why}")
        run.blocked[name] = outcome["status"]
        run.outcomes.setdefault(name, []).append(outcome)
        return
    rec = Recorder(name, unit, total(run.plan, run.world))
    rec.extra["round"] = round_no
    probe = ResourceProbe(run.target.pid, run.target.db_pid)
    status.show(f"[{run.label} r{round_no}] {name}", rec)
    probe.start()
    client_cpu = time.process_time()
    start = time.perf_counter()
    try:
        limit = SCENARIO_TIMEOUT * max(1.0, run.plan.users / 50)
        await asyncio.wait_for(fn(run.client, run.world, run.plan, rec), limit)
        outcome.update(status="ok", detail=rec.last_error)
    except Exception as exc:
        unsupported = is_unsupported(exc)
        if unsupported is not None:
            outcome.update(status="unsupported", detail=f"unsupported by target: "
                                                        f"{unsupported.endpoint}")
        else:
            outcome.update(status="error", detail=f"{type(exc).__name__}: {exc}"[:400])
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu
    res = await probe.stop()
    if outcome["status"] != "ok" and name in SETUP:
        run.blocked[name] = outcome["status"]
    rec.extra.pop("round", None)
    outcome.update(events=rec.events, wall_s=wall, requests=rec.requests, errors=rec.errors,
                   cpu_s=res.cpu_s, db_cpu_s=res.db_cpu_s, peak_rss_mb=res.peak_rss_mb,
                   hwm_mb=res.hwm_mb, client_cpu_s=client_cpu, **rec.extra)
    run.outcomes.setdefault(name, []).append(outcome)
    run.latencies.setdefault(name, []).extend(rec.latencies)
    rate = rec.events / wall if wall > 0 else 0.0
    status.done(f"[{run.label} r{round_no}] {name}: {outcome['status']} {rec.events} {unit} "
                f"in {wall:.1f}s ({rate:.1f}/s) cpu={res.cpu_s:.1f}s"
                + (f" - {outcome['detail']}" if outcome["status"] != "ok" else ""))


def summarize(run: TargetRun) -> dict[str, dict[str, Any]]:
    """Per scenario: pooled latencies and summed work across rounds."""
    out: dict[str, dict[str, Any]] = {}
    for name, outcomes in run.outcomes.items():
        good = [o for o in outcomes if o["status"] == "ok"]
        if not good:
            out[name] = {"status": outcomes[-1]["status"], "detail": outcomes[-1]["detail"],
                         "unit": outcomes[-1]["unit"]}
            continue
        events = sum(o["events"] for o in good)
        wall = sum(o["wall_s"] for o in good)
        cpu = sum(o["cpu_s"] for o in good)
        db_cpu = sum(o["db_cpu_s"] for o in good)
        summary: dict[str, Any] = {
            "status": "ok", "unit": good[0]["unit"], "rounds": len(good), "events": events,
            "wall_s": wall, "events_per_s": events / wall if wall else None,
            "cpu_s": cpu, "db_cpu_s": db_cpu,
            "cpu_s_per_1k": 1000 * cpu / events if events else None,
            "db_cpu_s_per_1k": 1000 * db_cpu / events if events else None,
            "peak_rss_mb": max(o["peak_rss_mb"] for o in good),
            "hwm_mb": max((o["hwm_mb"] or 0) for o in good),
            # The load generator shares the machine: a busy client inflates latencies.
            "client_cpu_s": sum(o["client_cpu_s"] for o in good),
            "errors": sum(o["errors"] for o in good),
            "requests": sum(o["requests"] for o in good),
            **summarize_ms(run.latencies.get(name, [])),
        }
        for key in ("rooms_per_sync", "pollers", "wake_events", "missed"):
            if key in good[-1]:
                summary[key] = sum(o[key] for o in good) if key == "missed" else good[-1][key]
        out[name] = summary
    return out


async def run_rounds(runs: list[TargetRun], scenarios: list[str], rounds: int) -> None:
    """Setup once per target, then each steady scenario A/B/A/B: targets alternate, and the
    order flips every round so neither always runs on a warmer machine."""
    status = Status()
    status.start()
    try:
        for name in [s for s in SETUP if s in scenarios]:
            for run in runs:
                await run_scenario(run, name, 1, status)
        for name in [s for s in scenarios if s not in SETUP]:
            for round_no in range(1, rounds + 1):
                order = runs if round_no % 2 else list(reversed(runs))
                for run in order:
                    await run_scenario(run, name, round_no, status)
    finally:
        await status.stop()


def client_for(target: Target, plan: Plan) -> Client:
    # Every long-poller holds a connection: the sends must not queue behind them.
    pollers = max(plan.pollers, plan.targeted_pollers)
    return Client(target.base_url, connections=pollers + plan.concurrency * 2 + 10)
