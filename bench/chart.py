"""``python -m bench.chart``: PNG of hs/Synapse ratios per hs release from bench/results/*.json.

One panel per metric (throughput, p50, p99, CPU per 1k events), one line per scenario and
database, x axis = hs version (date order). Throughput ratios above 1 and latency/CPU ratios
below 1 mean hs is ahead. Needs matplotlib (the ``bench`` extra); without it, says so and
exits 0 so CI scripts do not break.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
PANELS = (("events_per_s", "throughput hs/Synapse (>1 better)"),
          ("p50_ms", "p50 latency hs/Synapse (<1 better)"),
          ("p99_ms", "p99 latency hs/Synapse (<1 better)"),
          ("cpu_s_per_1k", "CPU per 1k events hs/Synapse (<1 better)"))


def load_series(directory: Path) -> dict[str, dict[str, list[tuple[str, str, float]]]]:
    """metric -> "scenario (db)" -> [(date, hs version, ratio)], from every compare file.

    Several runs of one version are all kept; the latest per version wins when plotting.
    """
    series: dict[str, dict[str, list[tuple[str, str, float]]]] = defaultdict(
        lambda: defaultdict(list))
    for path in sorted(directory.glob("*.json")):
        try:
            doc: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        meta, ratios = doc.get("meta", {}), doc.get("ratios") or {}
        for db, per in ratios.items():
            for scenario, values in per.items():
                for metric, _ in PANELS:
                    value = values.get(metric)
                    if isinstance(value, int | float):
                        series[metric][f"{scenario} ({db})"].append(
                            (meta.get("date", ""), meta.get("hs_version", "?"), float(value)))
    return series


def latest_per_version(points: list[tuple[str, str, float]]) -> list[tuple[str, float]]:
    """(version, ratio) in date order, keeping the newest measurement of each version."""
    newest: dict[str, tuple[str, float]] = {}
    for date, version, value in sorted(points):
        newest[version] = (date, value)
    return [(version, value) for version, (_, value) in sorted(newest.items(),
                                                                  key=lambda kv: kv[1][0])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chart", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS_DIR)
    parser.add_argument("-o", "--output", type=Path, default=RESULTS_DIR / "ratios.png")
    args = parser.parse_args(argv)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: `pip install matplotlib` (the bench extra) to draw "
              "charts; nothing drawn.", file=sys.stderr)
        return 0
    series = load_series(args.results)
    if not series:
        print(f"no compare results with ratios in {args.results}; run "
              "`python -m bench.load compare` first.", file=sys.stderr)
        return 1
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(10, 3.2 * len(PANELS)), squeeze=False)
    for ax, (metric, title) in zip(axes[:, 0], PANELS, strict=True):
        for label, points in sorted(series.get(metric, {}).items()):
            line = latest_per_version(points)
            ax.plot([v for v, _ in line], [r for _, r in line], marker="o", label=label)
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("hs version")
        if ax.get_lines()[:-1]:  # the last line is the y=1 reference
            ax.legend(fontsize="x-small", ncol=2)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=100)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
