#!/usr/bin/env bash
# The API contract, checked against a private pipeline: the OpenAPI document the gateway
# serves must describe exactly what it does.
#
#   bash scripts/contract.sh        (make contract; part of make test)
#
# Sets up everything it needs and tears it down again:
#   - the development stack (scripts/stack.sh up) and a virtual environment,
#     .stack/contract-venv, with the pinned tools of scripts/contract/requirements.txt
#     (Schemathesis, openapi-python-client, pytest) from PyPI;
#   - the binary (the debug build `cargo test` already compiled, so `make test` builds no
#     release tree; ALTDATA_BIN=path uses another);
#   - a fresh database altdata_contract_<random> on the DATABASE_URL's server and a unique
#     ALTDATA_PREFIX=c_<random> (NATS streams and Redis keys), so it runs beside anything else;
#   - the disclosure rule's k at 2 (`altdata disclosure --k 2`), so that a small data set
#     answers with values and still withholds some; 14 days of generated data with restated
#     days, ingested and aggregated; an analyst and an admin key; `altdata gateway` in the
#     background, its rate limit lifted (429 has its own test);
# then runs
#   1. Schemathesis with every check, examples, coverage, fuzzing and stateful phases (links:
#      review queue -> assign -> undo), with the admin key, then with the analyst key; the
#      only failures it forgives are in scripts/contract/hooks.py (rules between parameters,
#      which JSON Schema cannot state);
#   2. a Python client generated from the served document (openapi-python-client) and
#      scripts/contract/test_client.py, which calls every data endpoint, JSON and CSV, and the
#      review flow through it;
# and cleans up: the gateway (by pid), the database, the prefixed NATS streams (nats-py from
# .stack/venv) and Redis keys (redis-cli, when installed).
#
# Environment: KEEP=1 leaves the database, streams, logs and reports for inspection;
# CONTRACT_EXAMPLES (default 40) and CONTRACT_SEED (default 24) tune Schemathesis.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# The hooks and the test are imported from scripts/contract: leave no bytecode beside them.
export PYTHONDONTWRITEBYTECODE=1
log() { printf '[contract] %s\n' "$*" >&2; }
die() { printf '[contract] ERROR: %s\n' "$*" >&2; exit 1; }

bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
source .stack/env
set +a
command -v psql >/dev/null || die "psql is required"

VENV="$ROOT/.stack/contract-venv"
REQUIREMENTS="$ROOT/scripts/contract/requirements.txt"
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null; then
  log "installing $(grep -v '^#' "$REQUIREMENTS" | tr '\n' ' ')into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi

if [[ -n "${ALTDATA_BIN:-}" ]]; then
  ALTDATA="$ALTDATA_BIN"
else
  log "building the binary (debug profile: shares the tests' build)"
  cargo build --bin altdata
  ALTDATA="$ROOT/target/debug/altdata"
fi
[[ -x "$ALTDATA" ]] || die "no altdata binary at $ALTDATA"

RAND="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
DB="altdata_contract_${RAND}"
export ALTDATA_PREFIX="c_${RAND}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/altdata-contract.XXXXXX")"
GATEWAY_PID=""

# DATABASE_URL = <server>/<database>[?params]: same server, our own database.
URL_BASE="${DATABASE_URL%%\?*}"
URL_PARAMS="${DATABASE_URL:${#URL_BASE}}"
SERVER="${URL_BASE%/*}"
ADMIN_DB_URL="${SERVER}/postgres${URL_PARAMS}"
export DATABASE_URL="${SERVER}/${DB}${URL_PARAMS}"
export ALTDATA_CUSTOMER_KEY_SECRET="contract-test-secret-${RAND}-0123456789abcdef"
# Streams sized for a small data set: JetStream reserves max_bytes up front.
export ALTDATA_TXN_MAX_MB=256 ALTDATA_AGG_MAX_MB=64 ALTDATA_CACHE_MAX_MB=32

cleanup() {
  local status=$?
  set +e
  if [[ -n "$GATEWAY_PID" ]]; then
    kill -TERM "$GATEWAY_PID" 2>/dev/null
    for _ in $(seq 1 300); do kill -0 "$GATEWAY_PID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$GATEWAY_PID" 2>/dev/null; then
      log "the gateway (pid $GATEWAY_PID) did not stop within 30 s of SIGTERM; killing it"
      kill -KILL "$GATEWAY_PID" 2>/dev/null
    fi
    wait "$GATEWAY_PID" 2>/dev/null
  fi
  if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: left database $DB, prefix $ALTDATA_PREFIX, logs and reports in $WORK"
    exit "$status"
  fi
  if [[ $status -ne 0 ]]; then
    for f in "$WORK"/*.log; do
      [[ -f "$f" ]] || continue
      log "---- last lines of $(basename "$f") (timestamps cut, repeats counted)"
      sed -E 's/^[^ ]+ //' "$f" | uniq -c | tail -n 20 >&2
    done
  fi
  psql "$ADMIN_DB_URL" -qAtc "DROP DATABASE IF EXISTS ${DB} WITH (FORCE)" >/dev/null 2>&1 ||
    log "could not drop database $DB"
  if [[ -x .stack/venv/bin/python ]]; then
    .stack/venv/bin/python - "$NATS_URL" "$ALTDATA_PREFIX" <<'PY' >/dev/null 2>&1 || log "could not delete the streams of $ALTDATA_PREFIX"
import asyncio, sys
import nats

async def main(url, prefix):
    nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=1)
    js = nc.jetstream()
    for name in ("TXN", "AGG", "CACHE"):
        try:
            await js.delete_stream(f"{prefix.upper()}_{name}")
        except Exception:
            pass
    await nc.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
PY
  fi
  if command -v redis-cli >/dev/null; then
    redis-cli -u "$REDIS_URL" --scan --pattern "${ALTDATA_PREFIX}:*" 2>/dev/null |
      xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
  fi
  rm -rf "$WORK"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "database $DB, prefix $ALTDATA_PREFIX, work dir $WORK"
psql "$ADMIN_DB_URL" -qAtc "CREATE DATABASE ${DB}" >/dev/null

# run NAME COMMAND...: runs a step with its output in $WORK/NAME.log, shown if it fails.
run() {
  local name="$1"
  shift
  "$@" >"$WORK/$name.log" 2>&1 || { tail -n 30 "$WORK/$name.log" >&2; die "$name failed"; }
}
run migrate "$ALTDATA" migrate
run disclosure "$ALTDATA" disclosure --k 2
log "generating 14 days of data (two of them restated, so /v1/changes has changes)"
run generate "$ALTDATA" generate --days 14 --cards 1500 --seed 24 --resends 2 --out "$WORK/landing"
log "ingesting and aggregating"
run ingest "$ALTDATA" ingest --once "$WORK/landing"
run aggregate "$ALTDATA" aggregate --until-idle

# The fuzzer revokes and rotates keys by id (/v1/admin/keys/{id}/...): the keys it works with
# get ids far above the few it creates itself, so that it never revokes its own.
psql "$DATABASE_URL" -qAtc "SELECT setval('api_keys_id_seq', 987654321987)" >/dev/null
ANALYST_KEY="$("$ALTDATA" keys create --role analyst --name contract-analyst 2>/dev/null | tail -n 1)"
ADMIN_KEY="$("$ALTDATA" keys create --role admin --name contract-admin 2>/dev/null | tail -n 1)"
[[ "$ANALYST_KEY" == adx_* && "$ADMIN_KEY" == adx_* ]] || die "could not create API keys"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
BASE_URL="http://127.0.0.1:${PORT}"
ALTDATA_HTTP_ADDR="127.0.0.1:${PORT}" ALTDATA_WEB_DIR="$WORK/no-web" \
  ALTDATA_RATE_LIMIT_PER_SECOND=100000 ALTDATA_RATE_LIMIT_BURST=100000 ALTDATA_AUTH_FAILURES_PER_MINUTE=100000 \
  "$ALTDATA" gateway >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!

log "waiting for $BASE_URL/readyz"
deadline=$((SECONDS + 60))
until "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
  "$BASE_URL/readyz" 2>/dev/null; do
  kill -0 "$GATEWAY_PID" 2>/dev/null || die "the gateway exited early"
  (( SECONDS < deadline )) || die "the gateway was not ready within 60 s"
  sleep 0.2
done
"$VENV/bin/python" -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1]).read())' \
  "$BASE_URL/openapi.json" >"$WORK/openapi.json"

# schemathesis KEY NAME PHASES EXAMPLES: one run (settings in scripts/contract/schemathesis.toml,
# forgiven failures in scripts/contract/hooks.py); its JUnit report is kept in $WORK.
schemathesis() {
  local key="$1" name="$2" phases="$3" examples="$4"
  log "Schemathesis, $name key: --checks all --phases $phases --max-examples $examples"
  (
    cd "$WORK"
    PYTHONPATH="$ROOT/scripts/contract" SCHEMATHESIS_HOOKS=hooks \
      "$VENV/bin/schemathesis" --config-file "$ROOT/scripts/contract/schemathesis.toml" \
      run "$BASE_URL/openapi.json" \
      --checks all --phases "$phases" --max-examples "$examples" \
      --seed "${CONTRACT_SEED:-24}" --no-color --generation-database none \
      --header "Authorization: Bearer $key" \
      --report junit --report-dir "$WORK/report-$name"
  )
}
# The analyst first: the admin run may revoke any other key it lists (never its own).
log "the admin operations answer the analyst key 403, as documented: Schemathesis warns that"
log "they returned only 401/403 (authentication failed), which is the point"
schemathesis "$ANALYST_KEY" analyst examples,coverage,fuzzing 10
schemathesis "$ADMIN_KEY" admin examples,coverage,fuzzing,stateful "${CONTRACT_EXAMPLES:-40}"
ANALYST_KEY="$("$ALTDATA" keys create --role analyst --name contract-client 2>/dev/null | tail -n 1)"
[[ "$ANALYST_KEY" == adx_* ]] || die "could not create the client's API key"

log "generating a Python client from the served document"
run client "$VENV/bin/openapi-python-client" generate --path "$WORK/openapi.json" --meta none \
  --config scripts/contract/client.yaml --output-path "$WORK/client/altdata_client"
log "calling every endpoint through the generated client"
(
  cd "$WORK"
  PYTHONPATH="$WORK/client" ALTDATA_BASE_URL="$BASE_URL" \
    ALTDATA_ANALYST_KEY="$ANALYST_KEY" ALTDATA_ADMIN_KEY="$ADMIN_KEY" \
    "$VENV/bin/pytest" -q -p no:cacheprovider "$ROOT/scripts/contract/test_client.py"
)
log "passed: the document describes the gateway, and a client generated from it works"
