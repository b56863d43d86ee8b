#!/usr/bin/env bash
# Refreshes the GraphiQL page's files from the npm registry (needs only npm and node).
# Change a version here, run this, then put the new file names and the printed integrity
# values into src/http/playground.rs (`cargo test --lib playground` fails until they match).
set -euo pipefail
GRAPHIQL=4.1.2
REACT=18.3.1

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir "$pkg" && tar -xzf "$pkg.tgz" -C "$pkg"
done

rm -f "$here"/*.js "$here"/*.css
cp "graphiql-$GRAPHIQL/package/graphiql.min.js" "$here/graphiql-$GRAPHIQL.min.js"
cp "graphiql-$GRAPHIQL/package/graphiql.min.css" "$here/graphiql-$GRAPHIQL.min.css"
cp "react-$REACT/package/umd/react.production.min.js" "$here/react-$REACT.production.min.js"
cp "react-dom-$REACT/package/umd/react-dom.production.min.js" "$here/react-dom-$REACT.production.min.js"

cd "$here"
for f in *.js *.css; do
  printf '%-40s %8s bytes  sha384-%s\n' "$f" "$(wc -c <"$f")" \
    "$(node -e 'process.stdout.write(require("crypto").createHash("sha384").update(require("fs").readFileSync(process.argv[1])).digest("base64"))' "$f")"
done
