#!/usr/bin/env bash
# `make run`: installs and starts what labdeck needs, then serves it at http://127.0.0.1:8080
# in dev mode (lessons reload on save). Environment overrides: DATABASE_URL, REDIS_URL,
# LABDECK_BIND, LABDECK_DEV=0 (no hot reload).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_rust
ensure_postgres
ensure_redis
ensure_assets

log "building labdeck (release)"
cargo build --release --locked --bin labdeck

dev_flag=(--dev)
[ "${LABDECK_DEV:-1}" = "0" ] && dev_flag=()
log "database: ${DATABASE_URL}  redis: ${REDIS_URL}"
exec "$CARGO_TARGET_DIR/release/labdeck" serve "${dev_flag[@]}" --bind "${LABDECK_BIND:-127.0.0.1:8080}"
