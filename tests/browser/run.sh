#!/usr/bin/env bash
# GraphiQL in Chromium against a fresh `crm serve` (SQLite, temp dir), with the browser's
# network limited to that server: docs explorer, a query, a subscription.
# On demand, not in CI: needs Chromium (`apt-get install -y chromium`) and playwright-core
# (installed here from package-lock.json). The page itself needs no internet.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$here/../.."
command -v chromium >/dev/null || { echo "install Chromium first: apt-get install -y chromium" >&2; exit 2; }
(cd "$here" && npm ci --no-audit --no-fund --silent)
cargo build --quiet --manifest-path "$root/Cargo.toml" --bin crm
bin="${CARGO_TARGET_DIR:-$root/target}/debug/crm"

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export CRM_JWT_SECRET="browser-check-secret-browser-check-secret"
export DATABASE_URL="sqlite://$work/crm.db?mode=rwc"
CRM_LISTEN="127.0.0.1:$port" "$bin" serve >"$work/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.1
done
CRM_URL="http://127.0.0.1:$port" CRM_TOKEN="$("$bin" token)" node "$here/graphiql_subscription.mjs"
