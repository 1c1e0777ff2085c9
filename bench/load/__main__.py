"""``python -m bench.load``: client-server load against hs and/or Synapse.

  python -m bench.load run --target synapse --db sqlite
  python -m bench.load compare --db both --scale 2 --scenarios send_one_room wakeup

``compare`` keeps hs and Synapse running side by side (per database) and alternates them per
scenario round, prints a table with hs/Synapse ratios and writes JSON to bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from bench.load import report
from bench.load.metrics import quiet_sampler_threads
from bench.load.runner import TargetRun, client_for, run_rounds, summarize
from bench.load.scenarios import ALL, OPTIONAL, SETUP, STEADY, Plan
from bench.load.targets import Target, make_target
from bench.synapse_harness import DEFAULT_SYNAPSE_VENV

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "compare"):
        p = sub.add_parser(name)
        if name == "run":
            p.add_argument("--target", choices=("synapse", "hs"), required=True)
            p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
        else:
            p.add_argument("--db", choices=("sqlite", "postgres", "both"), default="sqlite")
        p.add_argument("--scale", type=float, default=1.0,
                       help="multiplies users, rooms and messages (default 1: a few minutes)")
        p.add_argument("--rounds", type=int, default=None,
                       help="repeats of each steady scenario (default: 1 for run, 2 for compare)")
        p.add_argument("--scenarios", nargs="+", choices=STEADY,
                       default=[s for s in STEADY if s not in OPTIONAL],
                       help=f"steady scenarios to run; setup ({', '.join(SETUP)}) always runs")
        p.add_argument("--pollers", type=int, default=None,
                       help="long-polling users in the wakeup scenario (default: every user)")
        p.add_argument("--users", type=int, default=None,
                       help="registered users (default: 50 x scale)")
        p.add_argument("--rooms", type=int, default=None,
                       help="rooms besides the busy one; the syncers join them all, so this "
                            "is the initial sync's room count (default: 20 x scale)")
        p.add_argument("--targeted-pollers", type=int, default=0,
                       help="run wakeup_targeted: N users (not syncers) long-poll, each with a "
                            "room of its own with the last user, who wakes one at a time")
        p.add_argument("--synapse-venv", type=Path, default=DEFAULT_SYNAPSE_VENV)
        p.add_argument("--hs-venv", type=Path, default=None,
                       help="venv whose `hs` script to run (default: python -m hs from src/)")
        p.add_argument("--no-save", action="store_true", help="do not write bench/results/")
    return parser


async def _measure(targets: list[Target], plan: Plan, rounds: int,
                   scenarios: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    # Ctrl-C / SIGTERM cancel the run cleanly instead of raising inside a loop callback.
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    assert task is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    runs = [TargetRun(t, plan, client_for(t, plan)) for t in targets]
    try:
        await run_rounds(runs, scenarios, rounds)
    finally:
        for run in runs:
            await run.client.close()
    return {run.label: summarize(run) for run in runs}


def _start(names: list[str], db: str, args: argparse.Namespace,
           failures: dict[str, str]) -> list[Target]:
    started: list[Target] = []
    for name in names:
        target = make_target(name, db, synapse_venv=args.synapse_venv, hs_venv=args.hs_venv)
        print(f"starting {name} ({db}) ...", file=sys.stderr, flush=True)
        try:
            target.start()
        except Exception as exc:
            failures[f"{name}/{db}"] = f"failed to start: {exc}"
            print(f"{name}/{db} failed to start: {exc}", file=sys.stderr)
            continue
        started.append(target)
    return started


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    """uvloop when available: the load generator must not be the bottleneck (nor its
    resource sampler's thread a delay in the latencies it measures)."""
    quiet_sampler_threads()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # SIGTERM should unwind like Ctrl-C so every server and cluster is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    names = [args.target] if args.command == "run" else ["hs", "synapse"]
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    rounds = args.rounds or (1 if args.command == "run" else 2)
    plan = Plan.from_scale(args.scale)
    if args.users is not None:
        plan = dataclasses.replace(plan, users=max(4, args.users),
                                   senders=min(plan.senders, max(4, args.users)))
    if args.rooms is not None:
        plan = dataclasses.replace(plan, rooms=max(2, args.rooms))
    if args.pollers is not None:
        plan = dataclasses.replace(plan, pollers=max(1, min(args.pollers, plan.users)))
    chosen = list(args.scenarios)
    spare = plan.users - plan.syncers - 1  # neither a syncer nor the sender
    targeted = args.targeted_pollers or (spare if "wakeup_targeted" in chosen else 0)
    if targeted > 0:
        plan = dataclasses.replace(plan, targeted_pollers=max(1, min(targeted, spare)))
        chosen.append("wakeup_targeted")
    scenarios = [s for s in ALL if s in SETUP or s in chosen]
    results: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    versions: dict[str, str] = {}
    for db in dbs:
        targets = _start(names, db, args, failures)
        try:
            for t in targets:
                versions[t.name] = t.version
            if targets:
                results.update(_run_loop(_measure(targets, plan, rounds, scenarios)))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print("interrupted; stopping servers", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGTERM, _interrupt)  # the loop reset it to the default
            signal.signal(signal.SIGINT, signal.default_int_handler)
            for t in targets:
                t.stop()
    for label, why in failures.items():
        results[label] = {s: {"status": "error", "detail": why} for s in scenarios}
    print()
    print(report.table(results, scenarios))
    for note in report.unsupported_notes(results):
        print(f"  {note}")
    document = {
        "meta": report.meta({"command": args.command, "db": args.db, "scale": args.scale,
                             "rounds": rounds, "scenarios": scenarios,
                             "targets": names}, versions),
        "plan": plan.__dict__, "results": results,
        "ratios": {db: report.ratios(results, db) for db in dbs},
    }
    if not args.no_save:
        path = report.save(document, prefix=f"{args.command}-{'-'.join(names)}-{args.db}")
        print(f"\nsaved {path}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # while starting or stopping servers; atexit cleans up
        print("interrupted", file=sys.stderr)
        sys.exit(130)
