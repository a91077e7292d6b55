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
# The SDK conformance suite, once per store: a fresh SQLite file, then a fresh PostgreSQL database.
export CALLRECORDS_BIN="$PWD/target/debug/callrecords"
echo "--- conformance on SQLite"
bash conformance/run.sh
pg_admin="${CALLRECORDS_TEST_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
conformance_db="callrecords_conformance_$$"
psql "$pg_admin" -qc "CREATE DATABASE $conformance_db" >/dev/null
trap 'psql "$pg_admin" -qc "DROP DATABASE IF EXISTS $conformance_db WITH (FORCE)" >/dev/null' EXIT
echo "--- conformance on PostgreSQL"
CALLRECORDS_CONFORMANCE_DB="${pg_admin%/*}/$conformance_db" bash conformance/run.sh
