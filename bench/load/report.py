"""Result table, hs/Synapse ratios and the JSON files under bench/results/."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS_DIR = REPO / "bench" / "results"
#: (key, label, higher_is_better) - the figures shown per scenario.
METRICS: tuple[tuple[str, str, bool], ...] = (
    ("events_per_s", "{unit}/s", True),
    ("p50_ms", "p50 ms", False),
    ("p95_ms", "p95 ms", False),
    ("p99_ms", "p99 ms", False),
    ("cpu_s_per_1k", "CPU s/1k {unit}", False),
    ("db_cpu_s_per_1k", "DB CPU s/1k {unit}", False),
    ("peak_rss_mb", "peak RSS MB", False),
)


def git_commit() -> tuple[str, bool]:
    """(commit, dirty) of the checkout; read-only git commands only."""
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(REPO), "status", "--porcelain",
                                     "--untracked-files=no"],
                                    capture_output=True, text=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, dirty


def hs_version() -> str:
    """``hs.__version__`` of this checkout (read from the source, hs need not be importable)."""
    init = REPO / "src" / "hs" / "__init__.py"
    try:
        match = re.search(r'^__version__ = "([^"]+)"', init.read_text(), re.MULTILINE)
    except OSError:
        match = None
    if match:
        return match.group(1)
    try:
        from hs import __version__
    except ImportError:
        return "unknown"
    return str(__version__)


def meta(args: dict[str, Any], versions: dict[str, str]) -> dict[str, Any]:
    commit, dirty = git_commit()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "hs_version": versions.get("hs") or hs_version(), "git_commit": commit, "git_dirty": dirty,
        "server_versions": versions, "args": args,
        "host": {"cpus": os.cpu_count(), "machine": platform.machine(),
                 "python": platform.python_version(), "kernel": platform.release()},
    }


def _ratio(a: Any, b: Any) -> float | None:
    if not isinstance(a, int | float) or not isinstance(b, int | float):
        return None
    if b == 0 or math.isnan(a) or math.isnan(b):
        return None
    return a / b


def ratios(results: dict[str, dict[str, dict[str, Any]]], db: str) -> dict[str, dict[str, Any]]:
    """hs/Synapse per scenario and metric for one database (None where either is missing)."""
    hs, syn = results.get(f"hs/{db}", {}), results.get(f"synapse/{db}", {})
    out: dict[str, dict[str, Any]] = {}
    for name in syn.keys() | hs.keys():
        a, b = hs.get(name, {}), syn.get(name, {})
        if a.get("status") != "ok" or b.get("status") != "ok":
            out[name] = {"status": f"hs {a.get('status', 'not run')}, "
                                   f"synapse {b.get('status', 'not run')}"}
            continue
        out[name] = {key: _ratio(a.get(key), b.get(key)) for key, _, _ in METRICS}
    return out


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def table(results: dict[str, dict[str, dict[str, Any]]], order: list[str]) -> str:
    """Text table: one row per scenario x metric, one column per target, ratio columns."""
    labels = sorted(results, key=lambda t: (t.split("/")[1], t.split("/")[0] != "synapse"))
    dbs = sorted({label.split("/")[1] for label in labels})
    ratio_cols = [db for db in dbs if f"hs/{db}" in results and f"synapse/{db}" in results]
    header = ["scenario", "metric", *labels, *[f"hs/syn {db}" for db in ratio_cols]]
    rows: list[list[str]] = []
    notes: list[str] = []
    all_ratios = {db: ratios(results, db) for db in ratio_cols}
    for name in order:
        cells = [results[t].get(name, {}) for t in labels]
        if not any(cells):
            continue
        unit = next((c.get("unit") for c in cells if c.get("unit")), "")
        if not any(c.get("status") == "ok" for c in cells):
            rows.append([name, "status", *[_status(c) for c in cells],
                         *["-" for _ in ratio_cols]])
            continue
        for key, label, _ in METRICS:
            values = [c.get(key) if c.get("status") == "ok" else None for c in cells]
            if all(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
                continue
            shown = [_fmt(v) if c.get("status") == "ok" else _status(c)
                     for v, c in zip(values, cells, strict=True)]
            rows.append([name, label.format(unit=unit), *shown,
                         *[_fmt(all_ratios[db].get(name, {}).get(key)) for db in ratio_cols]])
        extra = _extra(cells)
        if extra:
            notes.append(f"{name}: {extra}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    widths = [min(w, 40) for w in widths]
    lines = ["  ".join(c[:40].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines + [f"  {note}" for note in notes])


def _status(cell: dict[str, Any]) -> str:
    return str(cell.get("status", "not run"))


def _extra(cells: list[dict[str, Any]]) -> str:
    notes = []
    for c in cells:
        if "missed" in c:
            notes.append(f"{c['pollers']} pollers x {c['wake_events']} events, "
                         f"missed {c['missed']}")
        if c.get("rooms_per_sync"):
            notes.append(f"{c['rooms_per_sync']} rooms per sync")
        if c.get("wall_s") and c.get("client_cpu_s", 0) > 0.7 * c["wall_s"]:
            notes.append("load client near CPU-bound (latency includes client time)")
        if c.get("errors"):
            notes.append(f"{c['errors']} failed requests")
    return "; ".join(dict.fromkeys(notes))


def unsupported_notes(results: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    return [f"{label} {name}: {cell['detail']}" for label, per in results.items()
            for name, cell in per.items() if cell.get("status") != "ok" and cell.get("detail")]


def save(document: dict[str, Any], directory: Path = RESULTS_DIR, prefix: str = "load") -> Path:
    """Write ``<prefix>-<hs version>-<date>-<commit8>.json``; returns the path."""
    directory.mkdir(parents=True, exist_ok=True)
    m = document["meta"]
    stamp = m["date"].replace(":", "").replace("-", "")[:15]
    path = directory / f"{prefix}-{m['hs_version']}-{stamp}-{m['git_commit'][:8]}.json"
    path.write_text(json.dumps(_clean(document), indent=1, sort_keys=True,
                               default=_json_default, allow_nan=False) + "\n")
    return path


def _clean(value: Any) -> Any:
    """NaN (no samples) becomes null so the file stays strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
