#!/usr/bin/env bash
# The whole test suite: Rust unit and integration tests (real SQLite files, real HTTP on
# 127.0.0.1 with ports chosen at run time), then the msgraph-sdk conformance suite against the
# real server binary. This is the README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked --bin callrecords
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
else
  echo "cargo-nextest not found; falling back to cargo test" >&2
  cargo test --locked --no-fail-fast
fi
CALLRECORDS_BIN="$PWD/target/debug/callrecords" bash conformance/run.sh
