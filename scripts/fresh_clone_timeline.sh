#!/usr/bin/env bash
# Follows the README's quick start in a fresh clone, as a newcomer would, and times it:
# the serve command until the first call record answers on 127.0.0.1:8080, then the test command.
#
#   scripts/fresh_clone_timeline.sh COMMIT NAME 'SERVE COMMAND' ['TEST COMMAND']
#
# The clone goes to /tmp/fresh-NAME (removed first); the timeline is printed and written to
# /tmp/fresh-NAME.log. Crates already in ~/.cargo/registry are not downloaded again, so the figures
# leave out download time. Port 8080 must be free.
set -euo pipefail
commit=$1 name=$2 serve=$3 test_command=${4:-cargo nextest run --locked}
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=/tmp/fresh-$name log=/tmp/fresh-$name.log
rm -rf "$dir"
git clone -q "$repo" "$dir"
git -C "$dir" checkout -q "$commit"
cd "$dir"
say() { echo "$*" | tee -a "$log"; }
: >"$log"
say "commit $(git rev-parse --short HEAD), $(nproc) cores, $(date -u +%FT%TZ)"
start=$(date +%s)
setsid bash -c "$serve" >"$dir/serve.out" 2>&1 &
serve_pid=$!
first=""
while kill -0 "$serve_pid" 2>/dev/null; do
  if curl -sf 'http://127.0.0.1:8080/v1.0/communications/callRecords?$top=1' 2>/dev/null | grep -q '"id"'; then
    first=$(( $(date +%s) - start ))
    break
  fi
  sleep 1
done
kill -- -"$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
if [ -z "$first" ]; then say "serve command ended before a record was served:"; tail -20 "$dir/serve.out" | tee -a "$log"; exit 1; fi
say "first record after ${first} s: $serve"
start=$(date +%s)
status=0
bash -c "$test_command" >"$dir/test.out" 2>&1 || status=$?
say "test command took $(( $(date +%s) - start )) s (exit $status): $test_command"
grep -E '^ *Summary' "$dir/test.out" | tee -a "$log" || true
say "target/: $(du -sh target | cut -f1)"
for binary in target/release/callrecords target/debug/callrecords; do
  [ -f "$binary" ] && say "$binary: $(du -h "$binary" | cut -f1)"
done
exit "$status"
