# shellcheck shell=bash
# A whole Instaface cluster on loopback, for scripts to source: a private redis-server and
# mariadbd, N instaface-agents and N instaface-graphservers, all inside one temporary directory.
# No system service is touched. Used by scripts/demo and tests/browser/run.
#
#   source scripts/lib/cluster.sh
#   CLUSTER_BIN_DIR=build cluster_start 3     # or cluster_start with the default of 3
#   trap cluster_stop EXIT                    # stops every process, removes the directory
#   echo "${CLUSTER_URLS[0]}"                 # http://127.0.0.1:PORT, one per node
#   cluster_table                             # node, URL, role, term, leader, reachable peers
#
# What cluster_start leaves behind for the caller:
#   CLUSTER_DIR        the temporary directory (logs are $CLUSTER_DIR/*.log)
#   CLUSTER_URLS       the graphservers' base URLs, node i at index i (its id is n<i>)
#   CLUSTER_SOCKETS    the agents' control sockets, for instafacectl --socket
#   CLUSTER_NAME, CLUSTER_REDIS_PORT, CLUSTER_DB_PORT, CLUSTER_DB_PASSWORD
#   CLUSTER_PIDS       every process started, in start order
#   CLUSTER_AGENT_BIN, CLUSTER_GRAPH_BIN, CLUSTER_BOT_BIN, CLUSTER_CTL_BIN (the last may be "")
# It exports ConnectionStrings__DefaultConnection (the graphservers' database) as well.
#
# Settings, read when cluster_start runs: CLUSTER_BIN_DIR (where to look for the binaries,
# default build/), CLUSTER_NAME (default instaface), CLUSTER_SAY (a function name for progress
# lines, default none), CLUSTER_KEEP=1 (leave the directory for a post-mortem).

CLUSTER_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER_PIDS=()
CLUSTER_URLS=()
CLUSTER_SOCKETS=()
CLUSTER_DIR=""

cluster_say() { if [ -n "${CLUSTER_SAY:-}" ]; then "$CLUSTER_SAY" "$@"; fi; }

# cluster_find_bin NAME [optional]: the built binary, wherever in the build tree it landed.
cluster_find_bin() {
  local found dir=${CLUSTER_BIN_DIR:-build}
  found=$(find "$dir" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1)
  if [ -z "$found" ] && [ "${2:-}" != optional ]; then
    echo "cluster: $1 not found under $dir (build first)" >&2
    return 1
  fi
  echo "$found"
}

cluster_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# cluster_wait_for SECONDS DESCRIPTION COMMAND...: retries COMMAND every 0.1 s.
cluster_wait_for() {
  local limit=$1 what=$2 _
  shift 2
  for _ in $(seq $((limit * 10))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "cluster: $what did not come up; logs in $CLUSTER_DIR" >&2
  tail -n 20 "$CLUSTER_DIR"/*.log >&2 || true
  return 1
}

# cluster_start [NODES]: starts everything and returns once every graphserver is healthy and
# knows a leader. On failure it stops what it started and returns 1.
cluster_start() {
  local nodes=${1:-3}
  CLUSTER_NAME=${CLUSTER_NAME:-instaface}
  CLUSTER_AGENT_BIN=$(cluster_find_bin instaface-agent) || return 1
  CLUSTER_GRAPH_BIN=$(cluster_find_bin instaface-graphserver) || return 1
  CLUSTER_BOT_BIN=$(cluster_find_bin instaface-bot optional)
  CLUSTER_CTL_BIN=$(cluster_find_bin instafacectl optional)
  CLUSTER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/instaface-cluster.XXXXXX")
  local dir=$CLUSTER_DIR

  # Redis.
  CLUSTER_REDIS_PORT=$(cluster_free_port)
  mkdir -p "$dir/redis"
  redis-server --bind 127.0.0.1 --port "$CLUSTER_REDIS_PORT" --save '' --appendonly no \
    --dir "$dir/redis" --daemonize no >"$dir/redis.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  cluster_wait_for 10 "redis-server" redis-cli -p "$CLUSTER_REDIS_PORT" ping || { cluster_stop; return 1; }

  # MariaDB (--no-defaults first, or /etc/mysql would apply). Everything it says at start-up,
  # warnings included, goes to its log, not to the caller's terminal.
  CLUSTER_DB_PORT=$(cluster_free_port)
  CLUSTER_DB_PASSWORD="cluster-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
  mkdir -p "$dir/db/tmp"
  mariadb-install-db --no-defaults --user=root --datadir="$dir/db/data" \
    --auth-root-authentication-method=normal --skip-test-db >"$dir/db-install.log" 2>&1 ||
    { echo "cluster: mariadb-install-db failed; see $dir/db-install.log" >&2; cluster_stop; return 1; }
  mariadbd --no-defaults --user=root --datadir="$dir/db/data" --socket="$dir/db/sock" \
    --port="$CLUSTER_DB_PORT" --bind-address=127.0.0.1 --pid-file="$dir/db/pid" \
    --tmpdir="$dir/db/tmp" --log-error="$dir/mariadb.log" --skip-name-resolve \
    --innodb-buffer-pool-size=64M --innodb-log-file-size=16M >>"$dir/mariadb.log" 2>&1 &
  CLUSTER_PIDS+=($!)
  cluster_wait_for 30 "mariadbd" mariadb --no-defaults -uroot --socket="$dir/db/sock" -e 'SELECT 1' ||
    { cluster_stop; return 1; }
  mariadb --no-defaults -uroot --socket="$dir/db/sock" -e \
    "ALTER USER root@localhost IDENTIFIED BY '$CLUSTER_DB_PASSWORD';
     SET PASSWORD FOR root@'127.0.0.1'=PASSWORD('$CLUSTER_DB_PASSWORD');" ||
    { cluster_stop; return 1; }
  export ConnectionStrings__DefaultConnection="server=127.0.0.1;port=$CLUSTER_DB_PORT;database=instaface1;user=root;password=$CLUSTER_DB_PASSWORD"

  # The agents and graphservers, one pair per node.
  head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/secret"
  chmod 600 "$dir/secret"
  local i peer_port app_port app
  for ((i = 0; i < nodes; i++)); do
    peer_port=$(cluster_free_port)
    app_port=$(cluster_free_port)
    app="http://127.0.0.1:$app_port"
    CLUSTER_URLS+=("$app")
    CLUSTER_SOCKETS+=("$dir/n$i.sock")
    mkdir -p "$dir/n$i"
    "$CLUSTER_AGENT_BIN" --id "n$i" --cluster "$CLUSTER_NAME" --cluster-size "$nodes" \
      --listen "tcp://127.0.0.1:$peer_port" --app-address "$app" \
      --redis "redis://127.0.0.1:$CLUSTER_REDIS_PORT" --shm "instaface-$CLUSTER_NAME-$$-n$i" \
      --socket "$dir/n$i.sock" --state-dir "$dir/n$i" --secret-file "$dir/secret" \
      --app-liveness-ms 500 >"$dir/agent-n$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
    "$CLUSTER_GRAPH_BIN" --listen "127.0.0.1:$app_port" --app-address "$app" \
      --shm "instaface-$CLUSTER_NAME-$$-n$i" --socket "$dir/n$i.sock" \
      >"$dir/graphserver-n$i.log" 2>&1 &
    CLUSTER_PIDS+=($!)
  done
  cluster_say "waiting for $nodes graphservers and a leader"
  for ((i = 0; i < nodes; i++)); do
    cluster_wait_for 60 "graphserver n$i" curl -sf "${CLUSTER_URLS[$i]}/healthz" || { cluster_stop; return 1; }
  done
  for ((i = 0; i < nodes; i++)); do
    cluster_wait_for 30 "a leader known to n$i" curl -sf "${CLUSTER_URLS[$i]}/readyz" || { cluster_stop; return 1; }
  done
}

# Stops every process cluster_start started (TERM, then KILL after 5 s) and removes the
# directory unless CLUSTER_KEEP=1. Safe to call twice.
cluster_stop() {
  local pid _
  for pid in "${CLUSTER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${CLUSTER_PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  CLUSTER_PIDS=()
  if [ -n "$CLUSTER_DIR" ] && [ "${CLUSTER_KEEP:-0}" != 1 ]; then rm -rf "$CLUSTER_DIR"; fi
  if [ "${CLUSTER_KEEP:-0}" = 1 ] && [ -n "$CLUSTER_DIR" ]; then echo "cluster: kept $CLUSTER_DIR" >&2; fi
  CLUSTER_DIR=""
}

# A table of the cluster as each node sees it: node, URL, role, term, leader, reachable peers.
cluster_table() {
  local args=() i
  for ((i = 0; i < ${#CLUSTER_URLS[@]}; i++)); do
    args+=("n$i" "${CLUSTER_URLS[$i]}" "${CLUSTER_SOCKETS[$i]}")
  done
  python3 "$CLUSTER_LIB_DIR/cluster_table.py" --ctl "${CLUSTER_CTL_BIN:-}" "${args[@]}"
}
