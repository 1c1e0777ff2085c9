"""Ratios, the text table, saved JSON and the chart's data loading."""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench.load import report

from bench import chart


def _results() -> dict:
    ok = {"status": "ok", "unit": "events", "events_per_s": 100.0, "p50_ms": 10.0,
          "p95_ms": 20.0, "p99_ms": 30.0, "cpu_s_per_1k": 5.0, "db_cpu_s_per_1k": 0.0,
          "peak_rss_mb": 100.0}
    faster = dict(ok, events_per_s=200.0, p50_ms=5.0, p99_ms=math.nan)
    return {
        "synapse/sqlite": {"send_one_room": ok, "wakeup": ok},
        "hs/sqlite": {"send_one_room": faster,
                      "wakeup": {"status": "unsupported", "unit": "deliveries",
                                 "detail": "unsupported by target: GET /sync"}},
    }


def test_ratios_are_hs_over_synapse() -> None:
    r = report.ratios(_results(), "sqlite")
    assert r["send_one_room"]["events_per_s"] == 2.0
    assert r["send_one_room"]["p50_ms"] == 0.5
    assert r["send_one_room"]["p99_ms"] is None  # NaN on one side
    assert r["send_one_room"]["db_cpu_s_per_1k"] is None  # division by zero
    assert r["wakeup"] == {"status": "hs unsupported, synapse ok"}


def test_table_shows_values_ratio_and_unsupported() -> None:
    text = report.table(_results(), ["send_one_room", "wakeup"])
    assert "hs/syn sqlite" in text.splitlines()[0]
    assert any("events/s" in line and "200" in line and "2" in line for line in text.splitlines())
    assert "unsupported" in text
    notes = report.unsupported_notes(_results())
    assert notes == ["hs/sqlite wakeup: unsupported by target: GET /sync"]


def test_save_writes_strict_json_and_chart_reads_it(tmp_path: Path) -> None:
    results = _results()
    for version, date in (("0.1.0", "2026-01-01T00:00:00+00:00"),
                          ("0.2.0", "2026-02-01T00:00:00+00:00")):
        doc = {"meta": {"date": date, "hs_version": version, "git_commit": "abcdef0123"},
               "results": results, "ratios": {"sqlite": report.ratios(results, "sqlite")}}
        path = report.save(doc, tmp_path, prefix="compare")
        assert version in path.name
        json.loads(path.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(
            ValueError(c)))  # no NaN/Infinity tokens
    series = chart.load_series(tmp_path)
    points = series["events_per_s"]["send_one_room (sqlite)"]
    assert [v for v, _ in chart.latest_per_version(points)] == ["0.1.0", "0.2.0"]
    assert "p99_ms" not in series or "send_one_room (sqlite)" not in series["p99_ms"]


def test_meta_has_version_commit_and_date() -> None:
    m = report.meta({"db": "sqlite"}, {"synapse": "1.0"})
    assert m["hs_version"] and m["git_commit"] and m["date"].startswith("20")
