"""Percentile math and /proc parsing of the load tool (bench/load/metrics.py)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from bench.load import metrics
from bench.load.metrics import (
    ResourceProbe,
    cpu_seconds,
    descendants,
    hwm_kb,
    parse_stat,
    parse_status_kb,
    percentile,
    rss_kb,
    summarize_ms,
)


@pytest.mark.parametrize(("values", "pct", "expected"), [
    ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0], 95, 3.85),
    ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
    ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
    ([5.0], 99, 5.0),
    ([3.0, 1.0, 2.0], 50, 2.0),  # unsorted input
    (list(range(1, 101)), 99, 99.01),
])
def test_percentile_matches_linear_interpolation(values: list[float], pct: float,
                                                 expected: float) -> None:
    assert percentile(values, pct) == pytest.approx(expected)


def test_percentile_empty_is_nan_and_range_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_ms_converts_seconds() -> None:
    summary = summarize_ms([0.001, 0.002, 0.003])
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["min_ms"] == pytest.approx(1.0)
    assert summary["max_ms"] == pytest.approx(3.0)
    assert summary["count"] == 3


def test_parse_stat_with_awkward_command_name() -> None:
    # comm may contain spaces and ')' - fields after the last ')' are what count.
    line = ("1234 (we ird) name)) S 77 1234 1234 0 -1 4194560 100 0 0 0 "
            "250 40 3 1 20 0 4 0 100 1000 50")
    assert parse_stat(line) == (77, 250, 40)


def test_parse_status_kb() -> None:
    text = "Name:\tpython\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n"
    assert parse_status_kb(text, "VmRSS") == 10240
    assert parse_status_kb(text, "VmHWM") == 20480
    assert parse_status_kb(text, "VmSwap") is None


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_live_proc_readings_of_this_process() -> None:
    me = os.getpid()
    with open(f"/proc/{me}/stat") as fh:
        assert parse_stat(fh.read())[0] == os.getppid()
    assert cpu_seconds([me]) > 0
    assert rss_kb([me]) > 1000
    assert (hwm_kb(me) or 0) >= rss_kb([me]) // 2


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_probe_counts_cpu_of_a_busy_child() -> None:
    """A child burning CPU is found as a descendant and its CPU lands in the probe."""
    burn = "import time\nend = time.time() + 1.2\nwhile time.time() < end: pass"
    child = subprocess.Popen([sys.executable, "-c", burn])
    try:
        assert child.pid in descendants([os.getpid()])

        async def measure() -> float:
            probe = ResourceProbe(os.getpid(), interval=0.1)
            probe.start()
            await asyncio.sleep(1.0)
            return (await probe.stop()).cpu_s

        start = time.monotonic()
        cpu = asyncio.run(measure())
        assert cpu > 0.4 * (time.monotonic() - start) * 0.5
    finally:
        child.kill()
        child.wait()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs Linux /proc")
def test_probe_scans_proc_for_new_processes_only_every_rescan_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sample reads the known processes only (it shares the load generator's process and
    GIL); the whole-/proc scan for descendants runs at start, every ``rescan`` seconds
    and at stop, so a process started mid-run is still counted."""
    scans: list[float] = []
    real = metrics.descendants

    def counting(roots: Any) -> set[int]:
        scans.append(time.monotonic())
        return real(roots)

    monkeypatch.setattr(metrics, "descendants", counting)
    probe = ResourceProbe(os.getpid(), interval=0.01, rescan=0.3)

    async def measure() -> float:
        probe.start()
        await asyncio.sleep(0.2)  # ~20 samples, no scan past the first
        assert len(scans) == 1
        child = subprocess.Popen([sys.executable, "-c",
                                  "import time\nend = time.time() + 0.8\n"
                                  "while time.time() < end: pass"])
        try:
            await asyncio.sleep(0.7)  # a rescan finds the child, samples then read it
            assert any(child.pid in tree for tree in probe._trees.values())
            return (await probe.stop()).cpu_s
        finally:
            child.kill()
            child.wait()

    cpu = asyncio.run(measure())
    assert 2 <= len(scans) <= 6
    assert cpu > 0.2
