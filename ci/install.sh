#!/usr/bin/env bash
# Create .venv and install hs with its test extras, compiling the Cython extensions.
# HS_REQUIRE_EXTENSIONS=1 makes a failed native build an error instead of a silent fallback.
set -euo pipefail
source "$(dirname "$0")/env.sh"
if [ ! -x "$HS_VENV/bin/python" ]; then
  "$PYTHON" -m venv "$HS_VENV"
fi
"$HS_VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel cython
HS_REQUIRE_EXTENSIONS="${HS_REQUIRE_EXTENSIONS:-1}" \
  "$HS_VENV/bin/python" -m pip install -q -e "$HS_ROOT[dev]"
# Editable installs compile into build/; make sure the extensions sit beside their twins.
(cd "$HS_ROOT" && HS_REQUIRE_EXTENSIONS="${HS_REQUIRE_EXTENSIONS:-1}" \
  "$HS_VENV/bin/python" setup.py -q build_ext --inplace)
"$HS_VENV/bin/python" -c "import hs; print('hs', hs.__version__, hs.native_status())"
