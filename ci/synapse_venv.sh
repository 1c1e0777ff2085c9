#!/usr/bin/env bash
# A separate virtualenv with matrix-synapse, for the interop tests and side-by-side
# benchmarks (tests/interop, bench/load). Prints its path.
set -euo pipefail
source "$(dirname "$0")/env.sh"
venv="${HS_BENCH_SYNAPSE_VENV:-$HS_ROOT/.venv-synapse}"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import synapse" 2>/dev/null; then
  "$PYTHON" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "matrix-synapse[postgres]" >&2
fi
echo "$venv"
