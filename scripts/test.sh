#!/usr/bin/env bash
# `make test`: the whole suite. Formatting, clippy (warnings are errors), unit and integration
# tests against real PostgreSQL and Redis, the content and lab linters, and browser
# tests in headless Chromium. Installs and starts whatever is missing first.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

ensure_rust
ensure_postgres
ensure_redis
command -v redis-server >/dev/null 2>&1 || apt_install redis-server  # tests start their own to stop it
ensure_assets
ensure_chromium
ensure_test_kafka

export LABDECK_TEST_DATABASE_URL="$PG_ADMIN_URL"
export LABDECK_TEST_REDIS_URL="$REDIS_URL"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
log "cargo test (unit + integration, real PostgreSQL and Redis)"
cargo test --locked
log "labdeck content check"
"$CARGO_TARGET_DIR/debug/labdeck" content check
log "labdeck labs check (reference passes every test, starter fails one)"
"$CARGO_TARGET_DIR/debug/labdeck" labs check
log "browser tests (headless Chromium)"
LABDECK_BIN="$CARGO_TARGET_DIR/debug/labdeck" npm run --silent test:browser
log "all checks passed"
