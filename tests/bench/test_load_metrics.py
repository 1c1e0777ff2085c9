"""Percentile math and /proc parsing of the load tool (bench/load/metrics.py)."""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time

import pytest
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
