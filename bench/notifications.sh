#!/usr/bin/env bash
# End-to-end latency (order -> WebSocket) and sustained events/s of the notifications lab, with
# the embedded mock cluster and with a real Kafka-protocol broker (tansu). Figures go in the README.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"
ensure_rust
ensure_postgres
ensure_redis
ensure_test_kafka
export LABDECK_TEST_DATABASE_URL="$PG_ADMIN_URL"
log "embedded broker (librdkafka mock cluster)"
cargo bench --locked --bench notifications 2>/dev/null | grep '^notifications'
log "tansu at $LABDECK_TEST_KAFKA_BROKERS"
LABDECK_BENCH_KAFKA_BROKERS="$LABDECK_TEST_KAFKA_BROKERS" cargo bench --locked --bench notifications 2>/dev/null | grep '^notifications'
