#!/usr/bin/env bash
# On demand (not in CI): clones this repository into a temporary directory and runs the
# README's two commands there, as a machine without PostgreSQL would. The machine's own
# server is left alone: the server `.ci/run` tries first is pointed at a port where nothing
# listens, so it starts a throwaway cluster of its own.
#
#   bash tests/fresh_clone.sh
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# One build directory per machine, as `.ci/run` uses: a rerun builds only what changed.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/crm-target}"
unset TEST_DATABASE_URL DATABASE_URL CRM_JWT_SECRET
work=$(mktemp -d)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
git clone -q "$repo" "$work/crm"
cd "$work/crm"

echo "==> 1. cargo run --release (on a free port instead of 8080, which may be taken)"
port=$(( 20000 + RANDOM % 20000 ))
CRM_LISTEN="127.0.0.1:$port" cargo run --release >banner.txt 2>build.log &
server=$!
for _ in $(seq 1 1800); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { tail -n 20 build.log; echo "the service did not start" >&2; exit 1; }
  sleep 1
done
cat banner.txt
token=$(grep -o 'Bearer [^"]*' banner.txt | head -n 1 | cut -d' ' -f2)
[ -n "$token" ] || { echo "no dev token in the banner" >&2; exit 1; }
answer=$(curl -sf "http://127.0.0.1:$port/graphql" -H "Authorization: Bearer $token" \
  -H 'Content-Type: application/json' -d '{"query":"{ viewer { subject org } }"}')
echo "$answer"
echo "$answer" | grep -q '"org":"dev-org"' || { echo "the first query failed" >&2; exit 1; }
kill "$server"
wait "$server" 2>/dev/null || true
server=""
test -f crm.db || { echo "no crm.db" >&2; exit 1; }

echo "==> 2. bash .ci/run (with no PostgreSQL where it looks first)"
CI=true CI_POSTGRES_URL="postgres://postgres@127.0.0.1:1/postgres" bash .ci/run
echo "fresh clone: both commands succeeded"
