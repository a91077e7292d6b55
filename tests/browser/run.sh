#!/usr/bin/env bash
# Runs the dashboard's headless-Chromium tests (tests/browser/*.test.mjs) against a running callrecords server.
# Usage: tests/browser/run.sh [FILE.test.mjs ...]      (from any directory)
#        FILE names a test under tests/browser; the default is dashboard.test.mjs.
#          dashboard.test.mjs  a server with authentication off (serve --demo)
#          signin.test.mjs     a server with --auth local (serve --demo --auth local) and the CALLRECORDS_TENANT,
#                              _CLIENT_ID, _CLIENT_SECRET, _OTHER_TENANT, _OTHER_CLIENT_ID, _OTHER_CLIENT_SECRET
#                              its header describes
# Env:   CALLRECORDS_URL          the server's base URL, e.g. http://127.0.0.1:8080 (required)
#        CALLRECORDS_SCREENSHOTS  a directory for the screenshots the tests save (optional): dashboard-desktop.png,
#                                 -drilldown.png, -phone.png; signin-panel.png, -done.png, -other-tenant.png
#        CHROMIUM                 the browser puppeteer-core drives (default: /usr/bin/chromium)
# Needs Node.js 20 and npm; puppeteer-core downloads no browser.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

: "${CALLRECORDS_URL:?set CALLRECORDS_URL to the server under test, e.g. http://127.0.0.1:8080}"
export CALLRECORDS_URL
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  echo "browser: no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)" >&2
  exit 1
fi

# Resolve a relative screenshot directory against the caller's directory before we move.
if [ -n "${CALLRECORDS_SCREENSHOTS:-}" ]; then
  case "$CALLRECORDS_SCREENSHOTS" in /*) ;; *) CALLRECORDS_SCREENSHOTS="$PWD/$CALLRECORDS_SCREENSHOTS" ;; esac
  mkdir -p "$CALLRECORDS_SCREENSHOTS"
  export CALLRECORDS_SCREENSHOTS
fi

# The tests to run: names (or paths) of files under tests/browser, checked before anything is installed.
[ "$#" -gt 0 ] || set -- dashboard.test.mjs
tests=()
for name in "$@"; do
  file="$here/$(basename -- "$name")"
  if [ ! -f "$file" ]; then
    echo "browser: no test $name in $here" >&2
    exit 2
  fi
  tests+=("tests/browser/$(basename -- "$name")")
done

cd "$root"

# Install puppeteer-core from package-lock.json, only when the lock changed since the last successful install.
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "browser: installing puppeteer-core into $here/node_modules" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

# One file at a time: each drives its own Chromium against the one server.
exec node --test --test-concurrency=1 "${tests[@]}"
