//! The outbox relay: publishes outbox rows to the main topic and marks them sent.
//!
//! It wakes when this process places an order and otherwise polls every half second (rows
//! written by other instances, rows left over from a crash). One relay across all instances
//! works at a time (a transaction-scoped advisory lock), publishing oldest first with the
//! idempotent producer, keyed by learner. A row is marked sent only after the broker
//! acknowledged it; while the broker is down rows stay unsent and are retried with a growing
//! pause — an outage delays events, it never loses them or fails an order. A row published
//! whose acknowledgement was lost is published again: the consumers are idempotent.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde_json::json;

use super::events::Delivery;
use super::service::NotificationsLab;
use super::store::{self, OutboxRow};

const BATCH: i64 = 200;
const POLL: Duration = Duration::from_millis(500);

pub async fn run(lab: Arc<NotificationsLab>) {
    let mut pause = POLL;
    loop {
        tokio::select! {
            _ = lab.outbox_wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
        }
        match relay_once(&lab).await {
            Ok(Some(_)) | Ok(None) => pause = POLL,
            Err(err) => {
                tracing::warn!(error = %err, "outbox relay: publishing failed; will retry");
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// One pass: publishes every unsent row (up to a batch); `Err` when any could not be published.
async fn relay_once(lab: &NotificationsLab) -> anyhow::Result<Option<usize>> {
    let Some(pipeline) = &lab.pipeline else {
        return Ok(None);
    };
    let outcome = store::with_unsent(&lab.db, BATCH, move |rows: Vec<OutboxRow>| async move {
        let sends = rows.iter().map(|row| async move {
            let payload = serde_json::to_vec(&row.event).unwrap_or_default();
            let headers = Delivery::first().to_headers(row.event.event_id);
            let record = FutureRecord::to(&lab.topics.main)
                .key(&row.event.learner)
                .payload(&payload)
                .headers(headers);
            let result = pipeline
                .producer
                .send(record, Timeout::After(Duration::from_secs(1)))
                .await;
            (row, result)
        });
        let mut outcomes = Vec::new();
        for (row, result) in futures::future::join_all(sends).await {
            let event = &row.event;
            match result {
                Ok(delivery) => {
                    metrics::counter!("notifications_published_total").increment(1);
                    let _ = store::journey(
                        &lab.db,
                        event.event_id,
                        &event.learner,
                        "published",
                        json!({ "topic": lab.topics.main, "partition": delivery.partition,
                                "offset": delivery.offset, "key": event.learner }),
                    )
                    .await;
                    outcomes.push((row.id, Ok(())));
                }
                Err((err, _)) => {
                    let _ = store::journey(
                        &lab.db,
                        event.event_id,
                        &event.learner,
                        "publish_failed",
                        json!({ "error": err.to_string(), "note": "kept in the outbox; the relay retries" }),
                    )
                    .await;
                    outcomes.push((row.id, Err(err.to_string())));
                }
            }
        }
        outcomes
    })
    .await?;
    match outcome {
        Some(batch) if batch.failed > 0 => {
            anyhow::bail!("{} outbox rows could not be published", batch.failed)
        }
        Some(batch) => Ok(Some(batch.sent)),
        None => Ok(None),
    }
}
