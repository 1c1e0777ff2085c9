#!/usr/bin/env bash
# The README's test command: install everything, then run the whole suite.
#   - every test with the compiled twins (HS_REQUIRE_EXTENSIONS=1: a missing one fails);
#   - the protocol-core tests again on the pure-Python twins (HS_NO_EXTENSIONS=1);
#   - ruff and mypy on hs.core;
#   - the interop tests against a real Synapse installed into .venv-synapse.
# PostgreSQL must be installed (initdb on PATH or under /usr/lib/postgresql); the test
# harness starts its own server in a temporary directory.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$HS_ROOT/ci/install.sh"
cd "$HS_ROOT"
PY="$HS_VENV/bin/python"
# A real Synapse beside hs for tests/interop (federation proof): always run them here.
HS_BENCH_SYNAPSE_VENV="$("$HS_ROOT/ci/synapse_venv.sh")"
export HS_BENCH_SYNAPSE_VENV HS_INTEROP=1

echo "== lint"
"$PY" -m ruff check src tests bench
"$PY" -m mypy

echo "== tests, native twins"
HS_REQUIRE_EXTENSIONS=1 "$PY" -m pytest -q -p no:cacheprovider "$@"

echo "== protocol core, pure-Python twins"
HS_NO_EXTENSIONS=1 "$PY" -m pytest -q -p no:cacheprovider tests/core
