#!/usr/bin/env bash
# Upload benchmark (figures go in the README's "Streaming upload lab" section): throughput and
# server peak memory for 1 and 50 concurrent 100 MB CSV uploads (multipart, curl -F), labdeck's
# streaming endpoint (release build) next to a small Node.js server doing the same work with
# busboy, the multipart parser under multer (installed from npm into bench/upload-node/).
#
# Peak memory is the server process's VmHWM (/proc/<pid>/status) after the runs minus its
# resident set before them. Each server gets a fresh temporary upload folder, deleted afterwards.
# Usage: bench/upload.sh [concurrent uploads, default 50]   (BENCH_SERVERS="labdeck node" by default)
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
CONCURRENCY="${1:-50}"
SIZE=$((100 * 1000 * 1000))
SERVERS=" ${BENCH_SERVERS:-labdeck node} "

ensure_rust
ensure_node
ensure_redis
ensure_postgres

work="$(mktemp -d)"
server=""
bench_db=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$bench_db" ]; then
    psql "$PG_ADMIN_URL" -XqAc "DROP DATABASE IF EXISTS \"$bench_db\" WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

log "generating a ${SIZE}-byte CSV"
csv="$work/bench.csv"
node -e '
  const fs = require("fs");
  const out = fs.openSync(process.argv[1], "w");
  const size = Number(process.argv[2]);
  let written = 0, i = 0;
  fs.writeSync(out, "id,name,city,amount\n"); written += 20;
  while (written < size) {
    let chunk = "";
    while (chunk.length < 1 << 20) { chunk += `${i},learner ${i},City ${i % 97},${(i * 7919) % 100000 / 100}\n`; i++; }
    if (written + chunk.length > size) chunk = chunk.slice(0, chunk.lastIndexOf("\n", size - written - 1) + 1) || "";
    if (!chunk) break;
    fs.writeSync(out, chunk); written += chunk.length;
  }
  fs.closeSync(out);
' "$csv" "$SIZE"
bytes="$(stat -c %s "$csv")"

rss_kb() { awk -v f="$2" '$1==f":" {print $2}' "/proc/$1/status"; }

# run <label> <url> <extra curl args...>: 1 upload, then $CONCURRENCY at once.
run() {
  local label="$1" url="$2"; shift 2
  for n in 1 "$CONCURRENCY"; do
    local before start end codes mb
    before="$(rss_kb "$server" VmRSS)"
    start="$(date +%s.%N)"
    codes="$(seq "$n" | xargs -P "$n" -I{} curl -s -o /dev/null -w '%{http_code}\n' "$@" -F "file=@$csv;type=text/csv" "$url" | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"
    end="$(date +%s.%N)"
    mb="$(awk -v b="$bytes" -v n="$n" -v s="$start" -v e="$end" 'BEGIN {printf "%.0f", b * n / (e - s) / 1e6}')"
    printf '  %-8s %2d × 100 MB: %5s MB/s, %6.1f s, server RSS %4d MiB before, peak %4d MiB (statuses: %s)\n' \
      "$label" "$n" "$mb" "$(awk -v s="$start" -v e="$end" 'BEGIN {print e - s}')" \
      "$((before / 1024))" "$(($(rss_kb "$server" VmHWM) / 1024))" "$codes"
    rm -rf "$work/uploads" && mkdir -p "$work/uploads"
  done
}

if [[ "$SERVERS" == *" labdeck "* ]]; then
log "labdeck (release build)"
cargo build --release --locked --bin labdeck
bench_db="labdeck_bench_ul_$$"
mkdir -p "$work/uploads"
DATABASE_URL="${PG_ADMIN_URL%/*}/$bench_db" LABDECK_REDIS_PREFIX="labdeck-bench:ul$$:" \
  LABDECK_UPLOAD_DIR="$work/uploads" LABDECK_UPLOAD_PER_LEARNER="$CONCURRENCY" \
  LABDECK_UPLOAD_GLOBAL="$CONCURRENCY" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/release/labdeck" serve --bind 127.0.0.1:0 > "$work/out" 2> "$work/err" &
server=$!
for _ in $(seq 100); do grep -q 'running at' "$work/out" && break; sleep 0.1; done
url="$(grep -o 'http://[^ ]*' "$work/out" | head -1)"
[ -n "$url" ] || die "server did not start: $(cat "$work/err")"
key="$(curl -fsS "$url/labs/upload" | grep -o "X-Lab-Key: [^']*" | head -1 | cut -d' ' -f2)"
[ -n "$key" ] || die "no lab key on the lab page"
# The uploader's files land in <dir>/<namespace>/: clear that folder between runs too.
run labdeck "$url/labs/upload/api/files" -H "X-Lab-Key: $key" -H "Accept: application/json"
kill "$server"; wait "$server" 2>/dev/null || true; server=""
fi

[[ "$SERVERS" == *" node "* ]] || exit 0
log "Node.js $(node --version) + busboy (multer's parser)"
( cd bench/upload-node && { [ -d node_modules/busboy ] || npm install --no-package-lock --no-audit --no-fund >/dev/null; } )
mkdir -p "$work/uploads"
UPLOAD_DIR="$work/uploads" node bench/upload-node/server.mjs > "$work/node-out" &
server=$!
for _ in $(seq 100); do grep -q 'listening' "$work/node-out" && break; sleep 0.1; done
port="$(awk '/listening/ {print $3}' "$work/node-out")"
[ -n "$port" ] || die "node server did not start"
run node "http://127.0.0.1:$port/"
