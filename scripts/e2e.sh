#!/usr/bin/env bash
# End-to-end browser tests: a real `autonomos serve` on a fresh data dir,
# driven by headless Chromium (ui/e2e/run.mjs). Prints where screenshots are.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
out=$(mktemp)
shots=${SCREENSHOT_DIR:-$PWD/ui/e2e-screenshots}
mkdir -p "$shots"
./bin/autonomos serve --json --data-dir "$data" --http 127.0.0.1:0 --nats-listen 127.0.0.1:-1 >"$out" 2>"$data/serve.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data" "$out"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  [ -s "$out" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "e2e: serve exited:"; cat "$data/serve.log"; exit 1; }
  sleep 0.2
done
url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$out")
[ -n "$url" ] || { echo "e2e: serve printed no url"; cat "$data/serve.log"; exit 1; }
echo "e2e: system at $url"
if ! (cd ui && BASE_URL="$url" SCREENSHOT_DIR="$shots" node e2e/run.mjs); then
  echo "e2e: FAILED; serve log:"; tail -50 "$data/serve.log"; exit 1
fi
echo "e2e: screenshots in $shots"
