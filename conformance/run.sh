#!/usr/bin/env bash
# Runs the msgraph-sdk conformance suite against a `callrecords serve` that the suite spawns itself.
# Usage: conformance/run.sh [pytest args...]      (from any directory)
# Env:   CALLRECORDS_BIN  server binary (default: <repo>/target/debug/callrecords)
#        PYTHON           interpreter used to create the virtualenv (default: python3)
# Needs Node.js and npm for the JavaScript client's tests.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# Resolve a relative CALLRECORDS_BIN against the caller's directory before we move.
bin="${CALLRECORDS_BIN:-$root/target/debug/callrecords}"
case "$bin" in /*) ;; *) bin="$PWD/$bin" ;; esac
export CALLRECORDS_BIN="$bin"

cd "$root"

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi

# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "conformance: installing pinned requirements into $venv" >&2
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install --quiet --require-virtualenv \
    -r "$here/requirements.txt"
  echo "$want" > "$stamp"
fi

# The JavaScript client (tests/test_js_client.py), from package-lock.json, again only when it changed.
js="$here/js"
js_stamp="$js/node_modules/.package-lock.sha256"
js_want="$(sha256sum "$js/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$js_stamp" ] || [ "$(cat "$js_stamp")" != "$js_want" ]; then
  echo "conformance: installing the JavaScript client into $js/node_modules" >&2
  (cd "$js" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$js_want" > "$js_stamp"
fi

exec "$venv/bin/python" -m pytest -q conformance/tests "$@"
