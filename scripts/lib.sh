#!/usr/bin/env bash
# Shared helpers for scripts/run.sh and scripts/test.sh: find or start PostgreSQL and Redis,
# install missing system packages, build front-end assets. Every step is idempotent: it checks
# first and only acts when something is missing.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/labdeck-target}"
DATA_DIR="${LABDECK_DATA_DIR:-$ROOT/.data}"
LOCAL_PG_PORT="${LABDECK_LOCAL_PG_PORT:-54329}"
LOCAL_REDIS_PORT="${LABDECK_LOCAL_REDIS_PORT:-63790}"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

APT_UPDATED=0
# apt_install PACKAGE... : installs Debian/Ubuntu packages, or says exactly what to install.
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo"; else
      die "please install: $* (e.g. sudo apt-get install -y $*), then run this again"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 || die "no apt-get here; please install: $*"
  log "installing $* with apt"
  if [ "$APT_UPDATED" -eq 0 ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed; please install: $*"
    APT_UPDATED=1
  fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
    || die "apt-get install failed; please install: $*"
}

ensure_rust() {
  command -v cargo >/dev/null 2>&1 || die "Rust is not installed: install it from https://rustup.rs (rustup), then run this again"
  command -v cc >/dev/null 2>&1 || apt_install build-essential
  # rdkafka builds librdkafka from source: it needs make, perl and the OpenSSL and zlib headers.
  local missing=()
  command -v make >/dev/null 2>&1 || missing+=(make)
  command -v perl >/dev/null 2>&1 || missing+=(perl)
  [ -f /usr/include/openssl/ssl.h ] || missing+=(libssl-dev)
  [ -f /usr/include/zlib.h ] || missing+=(zlib1g-dev)
  command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

# The Kafka-protocol broker for tests: tansu (Apache-2.0, from crates.io), built once into
# ~/.cache/tansu (about 15 minutes on two cores the first time), started on loopback with its
# log in memory. `make run` does not need it: without KAFKA_BROKERS labdeck embeds a mock cluster.
TANSU_ROOT="${LABDECK_TANSU_ROOT:-$HOME/.cache/tansu}"
TANSU_BIN="$TANSU_ROOT/bin/tansu"
TEST_KAFKA_PORT="${LABDECK_TEST_KAFKA_PORT:-19092}"
ensure_tansu() {
  if [ ! -x "$TANSU_BIN" ]; then
    log "installing the tansu Kafka broker into $TANSU_ROOT (first time only; ~15 minutes on 2 cores)"
    cargo install tansu --version 0.6.0 --locked --features dynostore,libsql --root "$TANSU_ROOT" \
      --target-dir "$HOME/.cache/tansu-build" || die "installing tansu failed"
  fi
  export LABDECK_TEST_TANSU="$TANSU_BIN"
}

ensure_test_kafka() {
  ensure_tansu
  export LABDECK_TEST_KAFKA_BROKERS="127.0.0.1:$TEST_KAFKA_PORT"
  if tcp_open 127.0.0.1 "$TEST_KAFKA_PORT"; then return; fi
  log "starting tansu on 127.0.0.1:$TEST_KAFKA_PORT (log in memory)"
  mkdir -p "$DATA_DIR/tansu"
  local url="tcp://127.0.0.1:$TEST_KAFKA_PORT"
  nohup "$TANSU_BIN" broker --listener-url "$url" --advertised-listener-url "$url" \
    --storage-engine memory://tansu/ >"$DATA_DIR/tansu/tansu.log" 2>&1 &
  echo $! >"$DATA_DIR/tansu/tansu.pid"
  for _ in $(seq 100); do tcp_open 127.0.0.1 "$TEST_KAFKA_PORT" && break; sleep 0.1; done
  tcp_open 127.0.0.1 "$TEST_KAFKA_PORT" || die "tansu did not start; see $DATA_DIR/tansu/tansu.log"
}

ensure_node() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 18 ] || die "Node.js 18 or newer is needed (found $(node --version))"
}

# npm packages and the bundled assets in static/dist (rebuilt when sources change).
ensure_assets() {
  ensure_node
  cd "$ROOT"
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm packages"
    npm ci --no-audit --no-fund --loglevel=error
  fi
  if [ ! -f static/dist/app.js ] || [ -n "$(find static/js scripts/build-assets.mjs package-lock.json -newer static/dist/app.js 2>/dev/null | head -1)" ]; then
    log "building front-end assets"
    npm run --silent build
  fi
}

# redis_ping HOST PORT : true when a Redis answers PONG there (no redis-cli needed).
redis_ping() {
  # A subshell, so the extra descriptor (and any redirection) never leaks into the caller.
  (
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    printf 'PING\r\n' >&3
    reply=""
    read -r -t 2 reply <&3 || true
    [[ "$reply" == "+PONG"* ]]
  ) 2>/dev/null
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# Sets REDIS_URL: the given one, a server on 127.0.0.1:6379, or one we start ourselves.
ensure_redis() {
  command -v redis-server >/dev/null 2>&1 || [ -n "${REDIS_URL:-}" ] || apt_install redis-server
  if [ -n "${REDIS_URL:-}" ]; then return; fi
  if redis_ping 127.0.0.1 6379; then export REDIS_URL="redis://127.0.0.1:6379"; return; fi
  if ! redis_ping 127.0.0.1 "$LOCAL_REDIS_PORT"; then
    log "starting a local Redis on port $LOCAL_REDIS_PORT (data in $DATA_DIR/redis)"
    mkdir -p "$DATA_DIR/redis"
    redis-server --port "$LOCAL_REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save "" --appendonly no \
      --dir "$DATA_DIR/redis" --logfile "$DATA_DIR/redis/redis.log" --pidfile "$DATA_DIR/redis/redis.pid" >/dev/null
    for _ in $(seq 50); do redis_ping 127.0.0.1 "$LOCAL_REDIS_PORT" && break; sleep 0.1; done
    redis_ping 127.0.0.1 "$LOCAL_REDIS_PORT" || die "Redis did not start; see $DATA_DIR/redis/redis.log"
  fi
  export REDIS_URL="redis://127.0.0.1:$LOCAL_REDIS_PORT"
}

pg_accepts() { # URL
  command -v psql >/dev/null 2>&1 && psql "$1" -XtAc 'select 1' >/dev/null 2>&1
}

# Sets DATABASE_URL (labdeck's database) and PG_ADMIN_URL (a database to create others from):
# the given DATABASE_URL, a trusting server on 127.0.0.1:5432, or a cluster of our own.
ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    export PG_ADMIN_URL="${PG_ADMIN_URL:-${DATABASE_URL%/*}/postgres}"
    return
  fi
  command -v psql >/dev/null 2>&1 || apt_install postgresql
  local url="postgres://postgres@127.0.0.1:5432"
  if tcp_open 127.0.0.1 5432 && pg_accepts "$url/postgres"; then
    export DATABASE_URL="$url/labdeck" PG_ADMIN_URL="$url/postgres"
    return
  fi
  start_local_postgres
  url="postgres://postgres@127.0.0.1:$LOCAL_PG_PORT"
  export DATABASE_URL="$url/labdeck" PG_ADMIN_URL="$url/postgres"
}

start_local_postgres() {
  local bin initdb
  initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)"
  if [ -z "$initdb" ]; then
    command -v initdb >/dev/null 2>&1 && initdb="$(command -v initdb)" || { apt_install postgresql; initdb="$(ls -1 /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)"; }
  fi
  bin="$(dirname "$initdb")"
  local dir="$DATA_DIR/postgres" as=()
  if [ "$(id -u)" -eq 0 ]; then
    # PostgreSQL refuses to run as root: run it as the postgres user, somewhere it can reach.
    id postgres >/dev/null 2>&1 || apt_install postgresql
    as=(runuser -u postgres -- env -C /)
    if ! runuser -u postgres -- test -x "$DATA_DIR/.." 2>/dev/null; then dir="/var/tmp/labdeck-postgres"; fi
    mkdir -p "$dir" && chown postgres "$dir"
  fi
  mkdir -p "$dir"
  if [ ! -f "$dir/PG_VERSION" ]; then
    log "creating a local PostgreSQL cluster in $dir"
    "${as[@]}" "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 >/dev/null
  fi
  if ! "${as[@]}" "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    log "starting the local PostgreSQL on port $LOCAL_PG_PORT"
    "${as[@]}" "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w \
      -o "-p $LOCAL_PG_PORT -c listen_addresses=127.0.0.1 -k /tmp" start >/dev/null \
      || die "PostgreSQL did not start; see $dir/server.log"
  fi
}

ensure_chromium() {
  if [ -z "${CHROMIUM_PATH:-}" ]; then
    for candidate in /usr/bin/chromium /usr/bin/chromium-browser; do
      [ -x "$candidate" ] && export CHROMIUM_PATH="$candidate" && break
    done
  fi
  if [ -z "${CHROMIUM_PATH:-}" ]; then
    apt_install chromium
    export CHROMIUM_PATH=/usr/bin/chromium
  fi
}
