#!/usr/bin/env bash
# Runs the dashboard's headless-Chromium test (dashboard.test.mjs) against a running callrecords server.
# Usage: tests/browser/run.sh      (from any directory)
# Env:   CALLRECORDS_URL          the server's base URL, e.g. http://127.0.0.1:8080 (required; authentication off)
#        CALLRECORDS_SCREENSHOTS  a directory for dashboard-desktop.png, -drilldown.png, -phone.png (optional)
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

cd "$root"

# Install puppeteer-core from package-lock.json, only when the lock changed since the last successful install.
stamp="$here/node_modules/.package-lock.sha256"
want="$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "browser: installing puppeteer-core into $here/node_modules" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$want" > "$stamp"
fi

exec node --test tests/browser/dashboard.test.mjs
