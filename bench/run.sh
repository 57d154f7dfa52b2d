#!/usr/bin/env bash
# Benchmarks for the platform (numbers go in the README):
#   1. requests/s and latency percentiles for a cached lesson page under wrk,
#   2. render time of the largest lesson (cargo bench --bench render).
# Usage: bench/run.sh [seconds per wrk run, default 20]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
DURATION="${1:-20}"

ensure_rust
ensure_postgres
ensure_redis
ensure_assets
command -v wrk >/dev/null 2>&1 || apt_install wrk

log "building release binary"
cargo build --release --locked --bin labdeck
log "render benchmark"
cargo bench --locked --bench render 2>/dev/null | grep '^render'

bench_db="labdeck_bench_$$"
export DATABASE_URL="${PG_ADMIN_URL%/*}/$bench_db"
log "starting labdeck (release) for wrk"
server_out="$(mktemp)"; server_err="$(mktemp)"
"$CARGO_TARGET_DIR/release/labdeck" serve --bind 127.0.0.1:0 > "$server_out" 2>"$server_err" &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  psql "$PG_ADMIN_URL" -XqAc "DROP DATABASE IF EXISTS \"$bench_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -f "$server_out" "$server_err"
}
trap cleanup EXIT
for _ in $(seq 300); do grep -q "running at" "$server_out" 2>/dev/null && break; sleep 0.1; done
url="$(grep -o "http://[^ ]*" "$server_out" | head -1)"
[ -n "$url" ] || die "server did not start: $(cat "$server_err")"

# A logged-in learner: every request also looks up the session and the learner's progress.
"$CARGO_TARGET_DIR/release/labdeck" user create --email bench@example.com --password 'load test passphrase 42' >/dev/null
jar="$(mktemp)"
token="$(curl -fsS -c "$jar" "$url/login" | grep -o 'name="csrf-token" content="[^"]*"' | sed 's/.*content="//; s/"$//')"
curl -fsS -b "$jar" -c "$jar" -o /dev/null --data-urlencode email=bench@example.com \
  --data-urlencode 'password=load test passphrase 42' --data-urlencode "csrf_token=$token" "$url/login"
cookie="$(awk '$6 ~ /labdeck_/ {printf "%s=%s; ", $6, $7}' "$jar")"
rm -f "$jar"

run() { # label path [header]
  local out rps p50 p99
  if [ -n "${3:-}" ]; then out="$(wrk -t2 -c32 -d"${DURATION}s" --latency -H "$3" "$url$2")"
  else out="$(wrk -t2 -c32 -d"${DURATION}s" --latency "$url$2")"; fi
  rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
  p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
  p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
  non2xx="$(awk '/Non-2xx/ {print $4}' <<<"$out")"
  echo "$1 GET $2: ${rps} req/s, p50 ${p50}, p99 ${p99}${non2xx:+, NON-2xx: $non2xx}"
}
echo "machine: $(nproc) cores, $(uname -m); wrk: 2 threads, 32 connections, ${DURATION}s per run"
run "visitor  " /lessons/event-loop
run "learner  " /lessons/event-loop "Cookie: $cookie"
run "visitor  " /
run "learner  " /dashboard "Cookie: $cookie"
