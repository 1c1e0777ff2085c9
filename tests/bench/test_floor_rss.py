"""The memory floor bench: a minimal server on the prescribed stack, loaded and measured."""

from __future__ import annotations

from bench.floor_rss import measure


def test_floor_server_answers_and_reports_its_peak() -> None:
    idle, peak, answered = measure(requests=60, concurrency=6, polls=4)
    assert answered == 64
    # An interpreter with asyncio, ssl and aiohttp loaded is tens of megabytes.
    assert 10_000 < idle <= peak < 500_000
