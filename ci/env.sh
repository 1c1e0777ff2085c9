# Sourced by the ci/ scripts: one virtualenv, PostgreSQL binaries on PATH.
HS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HS_VENV="${HS_VENV:-$HS_ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
for pgbin in /usr/lib/postgresql/*/bin; do
  [ -x "$pgbin/initdb" ] && PATH="$PATH:$pgbin"
done
export PATH HS_ROOT HS_VENV
