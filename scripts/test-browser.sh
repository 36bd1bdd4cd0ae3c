#!/usr/bin/env bash
# Browser tests of the dashboard and the review tool, end to end, against a private pipeline.
#
#   bash scripts/test-browser.sh
#
# Sets up everything it needs and tears it down again:
#   - the development stack (scripts/stack.sh up) and headless Chromium (Debian's `chromium`);
#   - the binary (the debug build `cargo test` already compiled, so `make test` builds no
#     release tree; ALTDATA_BIN=path uses another) and the web build (web/dist);
#   - a fresh database altdata_browser_<random> on the DATABASE_URL's server and a unique
#     ALTDATA_PREFIX=b_<random> (NATS streams/consumers and Redis keys), so it runs beside
#     anything else;
#   - 21 days of generated data, ingested and aggregated; an analyst and an admin key;
#   - `altdata gateway` (serving web/dist) and `altdata aggregate` (service mode, so review
#     assignments' outbox is relayed and the gateway's cache invalidated) in the background;
# then runs web/tests/browser.test.mjs (node:test + playwright-core) and cleans up: the
# background processes (by pid), the database, the prefixed NATS streams (nats-py from
# .stack/venv) and Redis keys (redis-cli, when installed).
#
# Environment: KEEP=1 leaves the database, streams and logs for inspection.
# Screenshots go to web/test-results/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { printf '[test-browser] %s\n' "$*" >&2; }
die() { printf '[test-browser] ERROR: %s\n' "$*" >&2; exit 1; }

bash scripts/stack.sh up
set -a
# shellcheck disable=SC1091
source .stack/env
set +a

if [[ ! -x /usr/bin/chromium ]]; then
  log "installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  if [[ $(id -u) -eq 0 ]]; then
    apt-get update -qq && apt-get install -y -qq chromium >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium >/dev/null
  fi
fi
command -v node >/dev/null || die "node is required (Node.js 20+)"
command -v psql >/dev/null || die "psql is required"

if [[ -n "${ALTDATA_BIN:-}" ]]; then
  ALTDATA="$ALTDATA_BIN"
else
  log "building the binary (debug profile: shares the tests' build)"
  cargo build --bin altdata
  ALTDATA="$ROOT/target/debug/altdata"
fi
[[ -x "$ALTDATA" ]] || die "no altdata binary at $ALTDATA"

log "building the web app"
(
  cd web
  if [[ ! -d node_modules || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund
  fi
  npm run build
)

RAND="$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
DB="altdata_browser_${RAND}"
export ALTDATA_PREFIX="b_${RAND}"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/altdata-browser.XXXXXX")"
PIDS=()
NAMES=()

# DATABASE_URL = <server>/<database>[?params]: same server, our own database.
URL_BASE="${DATABASE_URL%%\?*}"
URL_PARAMS="${DATABASE_URL:${#URL_BASE}}"
SERVER="${URL_BASE%/*}"
ADMIN_DB_URL="${SERVER}/postgres${URL_PARAMS}"
export DATABASE_URL="${SERVER}/${DB}${URL_PARAMS}"
export ALTDATA_CUSTOMER_KEY_SECRET="browser-test-secret-${RAND}-0123456789abcdef"
# Streams sized for the test's ~120k events: JetStream reserves max_bytes up front, and the
# production defaults (GBs) would not fit beside a running demo on a dev server's store.
export ALTDATA_TXN_MAX_MB=512 ALTDATA_AGG_MAX_MB=128 ALTDATA_CACHE_MAX_MB=32

cleanup() {
  local status=$?
  set +e
  local i pid
  for pid in "${PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
  done
  for i in "${!PIDS[@]}"; do
    pid="${PIDS[$i]}"
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "${NAMES[$i]} (pid $pid) did not stop within 30 s of SIGTERM; killing it"
      sed -E 's/^[^ ]+ //' "$WORK/${NAMES[$i]}.log" | uniq -c | tail -n 10 >&2
      kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
  done
  if [[ "${KEEP:-0}" == 1 ]]; then
    log "KEEP=1: left database $DB, prefix $ALTDATA_PREFIX, logs in $WORK"
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

"$ALTDATA" migrate >"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "migrate failed"; }
# Every cell released (k = 1), so that the tests can follow a review decision's spend to the
# cent through the dashboard; the disclosure rule itself is tested in integration-tests.
"$ALTDATA" disclosure --k 1 >>"$WORK/migrate.log" 2>&1 || { cat "$WORK/migrate.log" >&2; die "altdata disclosure failed"; }
log "generating 21 days of data"
"$ALTDATA" generate --days 21 --cards 3000 --seed 5 --out "$WORK/landing" >"$WORK/generate.log" 2>&1 ||
  { tail -n 30 "$WORK/generate.log" >&2; die "generate failed"; }
log "ingesting"
"$ALTDATA" ingest --once "$WORK/landing" >"$WORK/ingest.log" 2>&1 ||
  { tail -n 30 "$WORK/ingest.log" >&2; die "ingest failed"; }
log "aggregating"
"$ALTDATA" aggregate --until-idle >"$WORK/aggregate-once.log" 2>&1 ||
  { tail -n 30 "$WORK/aggregate-once.log" >&2; die "aggregate --until-idle failed"; }

ANALYST_KEY="$("$ALTDATA" keys create --role analyst --name browser-analyst 2>/dev/null | tail -n 1)"
ADMIN_KEY="$("$ALTDATA" keys create --role admin --name browser-admin 2>/dev/null | tail -n 1)"
[[ "$ANALYST_KEY" == adx_* && "$ADMIN_KEY" == adx_* ]] || die "could not create API keys"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
export ALTDATA_HTTP_ADDR="127.0.0.1:${PORT}"
export ALTDATA_WEB_DIR="$ROOT/web/dist"
BASE_URL="http://127.0.0.1:${PORT}"

"$ALTDATA" gateway >"$WORK/gateway.log" 2>&1 &
PIDS+=($!)
NAMES+=(gateway)
# The aggregator in service mode relays the review tool's outbox (aggregate updates and
# cache invalidations). It opens no listener unless ALTDATA_AGG_OPS_ADDR is set.
env -u ALTDATA_AGG_OPS_ADDR "$ALTDATA" aggregate >"$WORK/aggregate.log" 2>&1 &
PIDS+=($!)
NAMES+=(aggregate)

log "waiting for $BASE_URL/readyz"
deadline=$((SECONDS + 60))
until [[ "$(python3 - "$BASE_URL/readyz" <<'PY' 2>/dev/null
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=2).status)
except Exception:
    print(0)
PY
)" == 200 ]]; do
  for pid in "${PIDS[@]}"; do
    kill -0 "$pid" 2>/dev/null || die "a background process (pid $pid) exited early"
  done
  (( SECONDS < deadline )) || die "the gateway was not ready within 60 s"
  sleep 0.2
done

log "running the browser tests"
mkdir -p web/test-results
ALTDATA_BASE_URL="$BASE_URL" ALTDATA_ANALYST_KEY="$ANALYST_KEY" ALTDATA_ADMIN_KEY="$ADMIN_KEY" \
  ALTDATA_TEST_RESULTS="$ROOT/web/test-results" ALTDATA_CHROMIUM="${ALTDATA_CHROMIUM:-/usr/bin/chromium}" \
  node --test --test-reporter=spec web/tests/browser.test.mjs web/tests/analyst.test.mjs
log "passed; screenshots in web/test-results/"
