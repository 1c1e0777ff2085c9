#!/usr/bin/env bash
# Build a wheel, install it into a fresh venv and check that the compiled modules load
# and the core tests pass against the installed package (not the source tree).
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$HS_ROOT"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$HS_VENV/bin/python" -m build --wheel --outdir "$tmp/dist" . >"$tmp/build.log" 2>&1 \
  || { tail -50 "$tmp/build.log"; exit 1; }
"$PYTHON" -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q "$tmp"/dist/hs-*.whl pytest hypothesis canonicaljson signedjson
cp -r tests bench "$tmp/"
(cd "$tmp" && HS_REQUIRE_EXTENSIONS=1 venv/bin/python -c \
  "import hs; s = hs.native_status(); print(s); assert all(v == 'native' for v in s.values()), s")
(cd "$tmp" && HS_REQUIRE_EXTENSIONS=1 HS_SPEC_DIR="$HS_ROOT/../shared/spec" \
  venv/bin/python -m pytest -q -p no:cacheprovider tests/core)
echo "wheel OK: $(ls "$tmp"/dist)"
