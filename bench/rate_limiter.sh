#!/usr/bin/env bash
# Rate-limiter benchmarks (figures go in the README's "Rate-limiter lab" section):
#   1. redis-benchmark on this machine — PING, INCR and an EVAL'd INCR — the ceiling for any
#      Redis-backed limiter here;
#   2. `cargo bench --bench limiter` — decisions/s per algorithm in memory and through Redis
#      (the Lua scripts the demo API runs), 1 and 64 in flight;
#   3. the demo API end to end under wrk (HTTP, session lookup, settings read, script).
# Every Redis key written is under labdeck-bench:* and deleted afterwards.
# Usage: bench/rate_limiter.sh [seconds per run, default 5]
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
DURATION="${1:-5}"

ensure_rust
ensure_redis
command -v redis-benchmark >/dev/null 2>&1 || apt_install redis-tools

hostport="${REDIS_URL#redis://}"; hostport="${hostport##*@}"; hostport="${hostport%%/*}"
rhost="${hostport%:*}"; rport="${hostport##*:}"
prefix="labdeck-bench:rb$$:"
server=""
bench_db=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$bench_db" ]; then
    psql "$PG_ADMIN_URL" -XqAc "DROP DATABASE IF EXISTS \"$bench_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -f "${out_file:-}" "${err_file:-}"
  redis-cli -h "$rhost" -p "$rport" --scan --pattern "labdeck-bench:*" \
    | xargs -r -n 500 redis-cli -h "$rhost" -p "$rport" del >/dev/null || true
}
trap cleanup EXIT

echo "machine: $(nproc) cores, $(uname -m); $(redis-server --version | awk '{print $3}' | tr -d 'v=')"

log "redis-benchmark (100k requests per run)"
rb() { # label clients command...
  local label="$1" clients="$2"; shift 2
  local out
  out="$(redis-benchmark -h "$rhost" -p "$rport" -q -n 100000 -c "$clients" -r 1000 "$@" 2>/dev/null | tr '\r' '\n' | grep 'requests per second' | tail -1)"
  printf '  %-26s %3s clients: %s\n' "$label" "$clients" "$(awk -F': ' '{print $2}' <<<"$out")"
}
for c in 1 32; do
  rb "PING" "$c" PING
  rb "INCR" "$c" INCR "${prefix}incr:__rand_int__"
  rb "EVAL (INCR in Lua)" "$c" EVAL "return redis.call('INCR', KEYS[1])" 1 "${prefix}eval:__rand_int__"
done

log "limiter decisions in memory and through Redis (cargo bench --bench limiter)"
LIMITER_BENCH_SECONDS="$DURATION" cargo bench --locked --bench limiter 2>/dev/null

log "the demo API end to end (release build, wrk -t2 -c32, ${DURATION}s)"
command -v wrk >/dev/null 2>&1 || apt_install wrk
ensure_postgres
cargo build --release --locked --bin labdeck
bench_db="labdeck_bench_rl_$$"
export DATABASE_URL="${PG_ADMIN_URL%/*}/$bench_db" LABDECK_REDIS_PREFIX="labdeck-bench:api$$:"
# Fresh files: a fixed path could still hold the previous run's "running at" line when we look.
out_file="$(mktemp)"; err_file="$(mktemp)"
"$CARGO_TARGET_DIR/release/labdeck" serve --bind 127.0.0.1:0 > "$out_file" 2> "$err_file" &
server=$!
for _ in $(seq 100); do grep -q 'running at' "$out_file" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$out_file" | head -1)"
[ -n "$url" ] || die "server did not start: $(cat "$err_file")"
key="$(curl -fsS "$url/labs/rate-limiter" | grep -o "X-Lab-Key: [^']*" | head -1 | cut -d' ' -f2)"
[ -n "$key" ] || die "no lab key on the lab page"
out="$(wrk -t2 -c32 -d"${DURATION}s" --latency -H "X-Lab-Key: $key" "$url/labs/rate-limiter/api/demo")"
rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
echo "  GET /labs/rate-limiter/api/demo (sliding log, one key, mostly 429): ${rps} req/s, p50 ${p50}, p99 ${p99}"
