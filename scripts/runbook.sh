#!/usr/bin/env bash
# Runs every command of docs/OPERATIONS.md against a freshly started system
# and fails on the first error. Needs: go, curl, the nats CLI
# (go install github.com/nats-io/natscli/nats@v0.5.0) and, when
# AUTONOMOS_POSTGRES_URL is set, that Postgres (else DuckDB only).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${AUTONOMOS_BIN:-}
WORK=$(mktemp -d)
PID=
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
if [[ -z "$BIN" ]]; then
  BIN=$WORK/autonomos
  go build -o "$BIN" ./cmd/autonomos
fi
command -v nats >/dev/null || { echo "runbook: the nats CLI is not installed" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=127.0.0.1:$(free_port)
NATS_LISTEN=127.0.0.1:$(free_port)
export NATS_URL=nats://$NATS_LISTEN
DATA=$WORK/data
PG_ARGS=()
[[ -n "${AUTONOMOS_POSTGRES_URL:-}" ]] && PG_ARGS=(--postgres "$AUTONOMOS_POSTGRES_URL")
T=runbook
step() { echo; echo "== $*"; }

start() {
  AUTONOMOS_NATS_URL= "$BIN" serve --data-dir "$DATA" --http "$HTTP" --nats-listen "$NATS_LISTEN" "${PG_ARGS[@]}" --json \
    >"$WORK/serve.out" 2>"$WORK/serve.log" &
  PID=$!
  for _ in $(seq 100); do
    curl -fsS "http://$HTTP/health" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  cat "$WORK/serve.log" >&2; return 1
}
stop() { kill -TERM $PID; wait $PID || true; }

step "start a system"
start
TOKEN=$(curl -fsS -X POST "http://$HTTP/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d "{\"tenant\":\"$T\",\"email\":\"ops@$T.example\",\"password\":\"runbook-password\"}" | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
printf 'account_id,name,updated_at\nA-1,Alpha,2024-01-01T00:00:00Z\nA-2,Beta,2024-01-01T00:00:00Z\n,Missing id,2024-01-01T00:00:00Z\n' >"$WORK/a.csv"
curl -fsS -X POST "http://$HTTP/api/v1/filesource/upload" -H "Authorization: Bearer $TOKEN" \
  -F entity=account -F "file=@$WORK/a.csv" >/dev/null
# A poison message: valid JSON, impossible entity.
nats pub "canonical.$T.account" '{"specversion":"1.0","id":"poison","type":"com.autonomos.canonical.spaceship.upserted","tenantid":"runbook","data":{}}'
for _ in $(seq 50); do
  [[ $(nats stream info DLQ --json | python3 -c 'import sys,json; print(json.load(sys.stdin)["state"]["messages"])') -ge 3 ]] && break
  sleep 0.2
done

step "streams"
nats stream ls
nats stream info CANONICAL
nats stream subjects CANONICAL
# stream view pages interactively and needs a terminal: give it one.
tty_run() { script -qec "$*" /dev/null </dev/null; }
tty_run nats stream view CANONICAL 25 --subject "canonical.$T.account"
tty_run nats stream view DLQ 25 --subject "'dlq.$T.>'"
# Non-interactive equivalent:
nats sub "canonical.$T.>" --stream CANONICAL --all --count 3
nats stream get CANONICAL 1

step "consumers"
nats consumer ls CANONICAL
nats consumer info CANONICAL dcl-duckdb

step "key-value buckets"
nats kv ls
nats kv ls tenants
nats kv get tenants "$T"

step "shared rate limits"
nats kv ls quotas
nats kv get quotas "gateway.write.$T"
nats kv del quotas "gateway.write.$T" -f

step "replay a subject range into a new consumer"
nats consumer add CANONICAL "replay-$T" --filter "canonical.$T.>" --deliver 1 --pull --ack explicit \
  --replay instant --max-deliver=-1 --max-pending 0 --wait 30s --no-headers-only --backoff none --defaults
nats consumer next CANONICAL "replay-$T" --count 2 --no-ack
nats consumer rm -f CANONICAL "replay-$T"

step "dead letters"
"$BIN" dlq ls --nats-url "$NATS_URL" --tenant "$T"
SEQ=$("$BIN" dlq ls --nats-url "$NATS_URL" --tenant "$T" --json | python3 -c 'import sys,json; print(json.load(sys.stdin)["data"][0]["seq"])')
"$BIN" dlq show --nats-url "$NATS_URL" "$SEQ"
curl -fsS "http://$HTTP/api/v1/dcl/dlq?limit=10" -H "Authorization: Bearer $TOKEN" >/dev/null
# The mapping dead letter (the row without an id) is not redrivable: exit 1 is expected there.
"$BIN" dlq redrive --nats-url "$NATS_URL" --all --tenant "$T" || echo "(some dead letters were not redrivable, as listed)"

step "rebuild through the API (system running)"
curl -fsS -X POST "http://$HTTP/api/v1/dcl/rebuild" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{}'
echo

step "replay and rebuild from the command line (system stopped)"
stop
"$BIN" replay --tenant "$T" --data-dir "$DATA" "${PG_ARGS[@]}"
"$BIN" replay --tenant "$T" --entity account --data-dir "$DATA" --rebuild "${PG_ARGS[@]}"

step "purge a tenant's subjects"
start
nats stream purge CANONICAL --subject "canonical.$T.>" -f
nats stream purge DLQ --subject "dlq.$T.>" -f
stop
echo; echo "runbook: every command succeeded"
