#!/usr/bin/env bash
# Micro-benchmarks: every native twin beside its pure twin and the reference library, timed
# with time.process_time (CPU time: less sensitive to a shared machine). Results are saved as
# JSON under bench/results/, tagged with the hs version and commit, to compare releases.
#   bash ci/bench.sh [pytest args, e.g. -k canonical]
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HS_ROOT"
PY="$HS_VENV/bin/python"
[ -x "$PY" ] || PY=python3
version="$("$PY" -c 'import hs; print(hs.__version__)')"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
out="bench/results/micro-${version}-${commit}.json"
"$PY" -m pytest bench -p no:cacheprovider -q \
  --benchmark-only --benchmark-timer=time.process_time \
  --benchmark-min-rounds=30 --benchmark-max-time=1.0 \
  --benchmark-columns=median,iqr,ops,rounds --benchmark-sort=name \
  --benchmark-json="$out" "$@"
echo "saved $out"
