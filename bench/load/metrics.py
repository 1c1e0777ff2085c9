"""Latency percentiles and server resource use read from /proc.

CPU is utime+stime of the server process (all its threads: /proc/PID/stat counts them) plus
every live descendant, so worker processes are included; the database cluster is measured the
same way but reported apart. Peak RSS is sampled (sum of VmRSS over the tree) during a
scenario, because VmHWM only knows the lifetime peak of one process.

The sampler shares the load generator's process, so it must stay out of the latencies it
sits beside: a sample reads only the processes already known (the whole-``/proc`` scan for
new descendants runs every ``rescan`` seconds), and ``quiet_sampler_threads`` makes the
interpreter hand the GIL back to the event loop within 0.5 ms instead of 5 ms. Before both,
a sample held the GIL for ~3.5 ms four times a second, delaying whichever reply arrived
meanwhile: about 1% of samples, so exactly the p99.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (the 'type 7' definition numpy uses by default).

    ``pct`` is 0..100; NaN for no values, so an empty scenario never looks fast.
    """
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, not {pct}")
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize_ms(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/max of latencies given in seconds, reported in milliseconds."""
    return {f"p{p}_ms": percentile(seconds, p) * 1000 for p in (50, 95, 99)} | {
        "min_ms": min(seconds) * 1000 if seconds else math.nan,
        "max_ms": max(seconds) * 1000 if seconds else math.nan, "count": float(len(seconds))}


def parse_stat(text: str) -> tuple[int, int, int]:
    """(ppid, utime, stime) in clock ticks from a /proc/PID/stat line.

    The command name (field 2) may hold spaces and parentheses, so split after its last ')'.
    """
    rest = text[text.rindex(")") + 2:].split()
    # rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
    return int(rest[1]), int(rest[11]), int(rest[12])


def parse_status_kb(text: str, key: str) -> int | None:
    """A ``kB`` value such as VmRSS or VmHWM from /proc/PID/status text; None if absent."""
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, ValueError):
        return None


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` plus every live process below them (one /proc scan)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        text = _read(entry / "stat")
        if text is None:
            continue
        with contextlib.suppress(ValueError, IndexError):
            children.setdefault(parse_stat(text)[0], []).append(int(entry.name))
    found: set[int] = set()
    stack = [r for r in roots if (PROC / str(r)).exists()]
    while stack:
        pid = stack.pop()
        if pid in found:
            continue
        found.add(pid)
        stack.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime+stime of these processes (every thread included), in seconds."""
    ticks = 0
    for pid in pids:
        text = _read(PROC / str(pid) / "stat")
        if text is not None:
            _, utime, stime = parse_stat(text)
            ticks += utime + stime
    return ticks / CLOCK_TICKS


def rss_kb(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        text = _read(PROC / str(pid) / "status")
        if text is not None:
            total += parse_status_kb(text, "VmRSS") or 0
    return total


def hwm_kb(pid: int) -> int | None:
    text = _read(PROC / str(pid) / "status")
    return None if text is None else parse_status_kb(text, "VmHWM")


def quiet_sampler_threads() -> None:
    """Let a thread that wants the GIL (the event loop, woken by a reply) get it from a
    running sampler thread within 0.5 ms rather than the interpreter's default 5 ms."""
    sys.setswitchinterval(0.0005)


@dataclass
class ResourceSample:
    cpu_s: float
    db_cpu_s: float
    peak_rss_mb: float
    hwm_mb: float | None


class ResourceProbe:
    """Measures one scenario: CPU delta of the server (and DB) trees, peak tree RSS.

    Descendants are re-scanned every ``rescan`` seconds (and at start and stop) so
    processes started mid-run are counted; the CPU a process used before it was first seen,
    or after its last sample if it exits, is lost, which only ever under-reports.
    """

    def __init__(self, server_pid: int, db_pid: int | None = None,
                 interval: float = 0.25, rescan: float = 2.0) -> None:
        self.server_pid, self.db_pid, self.interval = server_pid, db_pid, interval
        self.rescan = rescan
        self._start: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._db_start: dict[int, float] = {}
        self._db_last: dict[int, float] = {}
        self._peak_kb = 0
        self._task: asyncio.Task[None] | None = None
        self._trees: dict[int, set[int]] = {}
        self._scanned_at = -math.inf

    def _per_pid(self, root: int | None) -> dict[int, float]:
        if root is None:
            return {}
        return {pid: cpu_seconds([pid]) for pid in self._trees.get(root, ())}

    def _sample(self, rescan: bool = False) -> None:
        now = time.monotonic()
        if rescan or now - self._scanned_at >= self.rescan:
            self._scanned_at = now
            roots = [r for r in (self.server_pid, self.db_pid) if r is not None]
            self._trees = {root: descendants([root]) for root in roots}
        server = self._per_pid(self.server_pid)
        self._last.update(server)
        self._db_last.update(self._per_pid(self.db_pid))
        self._peak_kb = max(self._peak_kb, rss_kb(server))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.to_thread(self._sample)

    def start(self) -> None:
        self._sample(rescan=True)
        self._start = self._per_pid(self.server_pid)
        self._db_start = self._per_pid(self.db_pid)
        self._last, self._db_last = dict(self._start), dict(self._db_start)
        self._peak_kb = rss_kb(self._start)
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> ResourceSample:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample(rescan=True)
        hwm = hwm_kb(self.server_pid)
        return ResourceSample(
            cpu_s=_delta(self._start, self._last), db_cpu_s=_delta(self._db_start, self._db_last),
            peak_rss_mb=self._peak_kb / 1024, hwm_mb=None if hwm is None else hwm / 1024)


def _delta(start: dict[int, float], last: dict[int, float]) -> float:
    return sum(value - start.get(pid, 0.0) for pid, value in last.items())
