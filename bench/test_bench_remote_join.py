"""Joining a remote room with 1,000 members over real federation (issue #6).

Run: ``PYTHONPATH=src:. pytest bench/test_bench_remote_join.py -s`` (add
``HS_BENCH_JOIN_MEMBERS=N`` for another size). A one-shot measurement, not a pytest-benchmark
loop: each round would need a fresh pair of servers and room, so it takes no ``benchmark``
fixture and ``ci/bench.sh`` (``--benchmark-only``) skips it; it is marked ``slow`` and bench/
is outside ``testpaths``, so the normal suite never runs it. The figures go to stdout and
the test's ``user_properties``; see ``bench/bench_remote_join.py`` for what is timed.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from bench.bench_remote_join import measure, report

#: The issue's bar is "must not take minutes"; a generous ceiling for a shared machine.
CEILING_S = 30.0


@pytest.mark.slow
@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_remote_join_big_room(db: str, record_property: Callable[[str, object], None]) -> None:
    if db == "postgres" and os.environ.get("HS_TEST_SKIP_POSTGRES", "") not in ("", "0"):
        pytest.skip("HS_TEST_SKIP_POSTGRES=1")
    members = int(os.environ.get("HS_BENCH_JOIN_MEMBERS", "1000"))
    out = measure(members, db)
    print(f"\ndb={db}\n{report(out)}")
    assert out["state_on_b"] == out["state_on_a"] + 1
    for key in ("join_wall_s", "join_cpu_s", "populate_s"):
        record_property(key, round(out[key], 4))
    for name, (wall, cpu_s, _calls) in out["phases"].items():
        record_property(f"{name.strip()} wall_s", round(wall, 4))
        record_property(f"{name.strip()} cpu_s", round(cpu_s, 4))
    assert out["join_wall_s"] < CEILING_S
