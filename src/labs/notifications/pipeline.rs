//! The notification service: consumers, the router to handlers, retries and the DLT.
//!
//! Each [`Source`] is one consumer group on one topic:
//! - **main** (`order-events`): a fresh event runs every handler;
//! - **retry** (`order-events-retry-<delay>`): a record is first held until its `x-due-at`
//!   (records in one retry topic all wait the same delay, so they come due in order) and then
//!   runs only the handler that failed. Waiting here never holds up the main topic;
//! - **dead letter** (`order-events-dlt`): records are stored for the DLT view.
//!
//! A handler failure is routed by [`route_failure`] — the same reference the graded challenge
//! uses — to the next retry topic or to the DLT, with the attempt history in headers. Offsets are
//! stored (and then committed) only after a record is fully dealt with, including publishing its
//! retry: at-least-once, made harmless by the idempotent handlers.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::events::{Delivery, FailedAttempt, Handler, OrderEvent, now_ms};
use super::handlers::{self, HandlerError};
use super::retry::{DeadLetterReason, ErrorClass, Route, route_failure};
use super::service::{NotificationsLab, Topics};
use super::store;

#[derive(Debug, Clone)]
pub enum Source {
    Main { topic: String },
    Retry { topic: String, delay_ms: u64 },
    DeadLetter { topic: String },
}

impl Source {
    pub fn all(topics: &Topics) -> Vec<Source> {
        let mut all = vec![Source::Main {
            topic: topics.main.clone(),
        }];
        all.extend(topics.retries.iter().map(|(delay, topic)| Source::Retry {
            topic: topic.clone(),
            delay_ms: *delay,
        }));
        all.push(Source::DeadLetter {
            topic: topics.dead_letter.clone(),
        });
        all
    }

    fn topic(&self) -> &str {
        match self {
            Source::Main { topic } | Source::Retry { topic, .. } | Source::DeadLetter { topic } => {
                topic
            }
        }
    }

    fn group(&self, lab: &NotificationsLab) -> String {
        match self {
            Source::Main { .. } => lab.group("notification-service"),
            Source::Retry { delay_ms, .. } => {
                lab.group(&format!("notification-service-retry-{delay_ms}ms"))
            }
            Source::DeadLetter { .. } => lab.group("notification-service-dlt"),
        }
    }
}

/// A delivery parked while its learner paused the consumer, or taken back on resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParkedDelivery {
    pub event: OrderEvent,
    pub topic: String,
    pub attempt: u32,
    pub handlers: Vec<Handler>,
    pub history: Vec<FailedAttempt>,
}

/// Runs one consumer for as long as the process lives, reconnecting on errors.
pub async fn consume(lab: Arc<NotificationsLab>, source: Source) {
    let Some(pipeline) = &lab.pipeline else {
        return;
    };
    // Never closed: closing (librdkafka's consumer close, run by `Drop`) blocks the thread until
    // the group coordinator has acknowledged the leave, and it is only ever reached when the
    // runtime shuts down — where it hung a test run. Without it the broker rebalances the group
    // after `session.timeout.ms` (10 s); offsets are committed as records finish either way.
    let consumer: std::mem::ManuallyDrop<StreamConsumer> = loop {
        match pipeline.kafka.consumer(&source.group(&lab)) {
            Ok(consumer) => match consumer.subscribe(&[source.topic()]) {
                Ok(()) => break std::mem::ManuallyDrop::new(consumer),
                Err(err) => tracing::warn!(error = %err, topic = source.topic(), "subscribing"),
            },
            Err(err) => tracing::warn!(error = %format!("{err:#}"), "creating a consumer"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    loop {
        let message = match consumer.recv().await {
            Ok(message) => message,
            Err(err) => {
                // librdkafka reconnects by itself; this is a transient error report.
                tracing::debug!(error = %err, topic = source.topic(), "consumer error");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        if let Source::Retry { .. } = source {
            wait_until_due(&message).await;
        }
        handle_record(&lab, &source, &message).await;
        if let Err(err) = consumer.store_offset_from_message(&message) {
            tracing::warn!(error = %err, "storing a consumer offset");
        }
    }
}

/// Holds a retry record until it is due: the partition is not read further meanwhile, which is
/// what a Kafka retry topic with a fixed delay relies on.
async fn wait_until_due(message: &BorrowedMessage<'_>) {
    let delivery = Delivery::from_headers(message.headers());
    if let Some(due) = delivery.due_at_ms {
        let wait = due - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
    }
}

async fn handle_record(lab: &NotificationsLab, source: &Source, message: &BorrowedMessage<'_>) {
    let payload = message.payload().unwrap_or_default();
    let delivery = Delivery::from_headers(message.headers());
    let event: OrderEvent = match serde_json::from_slice(payload) {
        Ok(event) => event,
        Err(err) => {
            // A poison pill: it can never be processed, and must not stop the partition.
            tracing::warn!(error = %err, topic = source.topic(), offset = message.offset(),
                "skipping an unreadable record");
            metrics::counter!("notifications_unreadable_total").increment(1);
            return;
        }
    };
    let _ = store::journey(
        &lab.db,
        event.event_id,
        &event.learner,
        "consumed",
        json!({ "topic": message.topic(), "partition": message.partition(),
                "offset": message.offset(), "attempt": delivery.attempt,
                "handlers": handler_ids(&delivery),
                "replay_of": delivery.replay_of }),
    )
    .await;
    match source {
        Source::DeadLetter { .. } => {
            store_dead_letter(
                lab,
                &event,
                &delivery,
                message.partition(),
                message.offset(),
            )
            .await
        }
        Source::Main { .. } | Source::Retry { .. } => {
            let parked = ParkedDelivery {
                event,
                topic: message.topic().to_string(),
                attempt: delivery.attempt,
                handlers: if delivery.handlers.is_empty() {
                    Handler::ALL.to_vec()
                } else {
                    delivery.handlers.clone()
                },
                history: delivery.history,
            };
            dispatch(lab, parked, true).await;
        }
    }
}

fn handler_ids(delivery: &Delivery) -> Vec<&'static str> {
    if delivery.handlers.is_empty() {
        Handler::ALL.iter().map(|h| h.id()).collect()
    } else {
        delivery.handlers.iter().map(|h| h.id()).collect()
    }
}

/// Runs a delivery's handlers and routes each failure. With `may_park`, a delivery for a learner
/// who paused their consumer is parked instead (resuming dispatches it with `may_park = false`).
pub async fn dispatch(lab: &NotificationsLab, delivery: ParkedDelivery, may_park: bool) {
    let event = &delivery.event;
    if may_park {
        let paused = store::faults(&lab.db, &event.learner)
            .await
            .map(|f| f.paused)
            .unwrap_or(false);
        if paused {
            let value = serde_json::to_value(&delivery).unwrap_or_default();
            if store::park(&lab.db, &event.learner, event.event_id, value)
                .await
                .is_ok()
            {
                let _ = store::journey(
                    &lab.db,
                    event.event_id,
                    &event.learner,
                    "parked",
                    json!({ "note": "your consumer is paused; handled when you resume" }),
                )
                .await;
                return;
            }
        }
    }
    for handler in &delivery.handlers {
        let result = handlers::run(&lab.db, *handler, event, delivery.attempt).await;
        match result {
            Ok(handled) => {
                metrics::counter!("notifications_handled_total", "handler" => handler.id())
                    .increment(1);
                let (stage, detail) = handled.journey(*handler, delivery.attempt);
                let _ =
                    store::journey(&lab.db, event.event_id, &event.learner, stage, detail).await;
            }
            Err(error) => route(lab, &delivery, *handler, error).await,
        }
    }
}

/// Sends a failed handler's event on to its retry topic or the DLT.
async fn route(
    lab: &NotificationsLab,
    delivery: &ParkedDelivery,
    handler: Handler,
    error: HandlerError,
) {
    let event = &delivery.event;
    let class = match error.class {
        ErrorClass::Retryable => "retryable",
        ErrorClass::Fatal => "fatal",
    };
    metrics::counter!("notifications_handler_failures_total", "handler" => handler.id(), "class" => class)
        .increment(1);
    let now = now_ms();
    let mut history = delivery.history.clone();
    history.push(FailedAttempt {
        attempt: delivery.attempt,
        at_ms: now,
        topic: delivery.topic.clone(),
        class: class.to_string(),
        error: error.message.clone(),
    });
    let _ = store::journey(
        &lab.db,
        event.event_id,
        &event.learner,
        "handler_failed",
        json!({ "handler": handler.id(), "attempt": delivery.attempt, "class": class,
                "error": error.message }),
    )
    .await;
    let route = route_failure(&lab.policy, &lab.topics.main, delivery.attempt, error.class);
    let (topic, next, stage, detail) = match &route {
        Route::Retry {
            topic,
            attempt,
            delay_ms,
        } => {
            let due = now + *delay_ms as i64;
            (
                topic.clone(),
                Delivery {
                    attempt: *attempt,
                    handlers: vec![handler],
                    due_at_ms: Some(due),
                    history,
                    reason: None,
                    replay_of: None,
                    dead_letter_id: None,
                },
                "retry_scheduled",
                json!({ "handler": handler.id(), "topic": topic, "attempt": attempt,
                        "delay_ms": delay_ms, "due_at_ms": due }),
            )
        }
        Route::DeadLetter { topic, reason } => {
            let reason = match reason {
                DeadLetterReason::Fatal => "fatal",
                DeadLetterReason::Exhausted => "exhausted",
            };
            (
                topic.clone(),
                Delivery {
                    attempt: delivery.attempt,
                    handlers: vec![handler],
                    due_at_ms: None,
                    history,
                    reason: Some(reason.to_string()),
                    replay_of: None,
                    // Made once, before the publish is retried, so every copy carries the same.
                    dead_letter_id: Some(uuid::Uuid::new_v4()),
                },
                "dead_lettered",
                json!({ "handler": handler.id(), "topic": topic, "reason": reason,
                        "attempts": delivery.attempt }),
            )
        }
    };
    publish_until_done(lab, &topic, event, &next).await;
    let _ = store::journey(&lab.db, event.event_id, &event.learner, stage, detail).await;
}

/// Publishes a record, retrying until the broker takes it: the source record's offset must not
/// be committed before its retry or dead letter exists.
pub async fn publish_until_done(
    lab: &NotificationsLab,
    topic: &str,
    event: &OrderEvent,
    delivery: &Delivery,
) {
    let Some(pipeline) = &lab.pipeline else {
        return;
    };
    let payload = serde_json::to_vec(event).unwrap_or_default();
    let mut pause = Duration::from_millis(100);
    loop {
        let record = FutureRecord::to(topic)
            .key(&event.learner)
            .payload(&payload)
            .headers(delivery.to_headers(event.event_id));
        match pipeline
            .producer
            .send(record, Timeout::After(Duration::from_secs(1)))
            .await
        {
            Ok(_) => return,
            Err((err, _)) => {
                tracing::warn!(error = %err, topic, "publishing a retry / dead letter; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn store_dead_letter(
    lab: &NotificationsLab,
    event: &OrderEvent,
    delivery: &Delivery,
    partition: i32,
    offset: i64,
) {
    let handler = delivery
        .handlers
        .first()
        .map(|h| h.id())
        .unwrap_or("unknown");
    let error = delivery
        .history
        .last()
        .map(|a| a.error.clone())
        .unwrap_or_default();
    let dead = store::NewDeadLetter {
        id: delivery.dead_letter_id.unwrap_or_else(uuid::Uuid::new_v4),
        event,
        handler,
        reason: delivery.reason.as_deref().unwrap_or("unknown"),
        error: &error,
        attempts: delivery.attempt,
        history: serde_json::to_value(&delivery.history).unwrap_or_default(),
        partition,
        offset,
    };
    match store::insert_dead_letter(&lab.db, dead).await {
        Ok(Some(id)) => {
            metrics::counter!("notifications_dead_letters_total").increment(1);
            let _ = store::journey(
                &lab.db,
                event.event_id,
                &event.learner,
                "dlt_stored",
                json!({ "dead_letter": id, "partition": partition, "offset": offset }),
            )
            .await;
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "storing a dead letter"),
    }
}

/// Replays a dead letter: its event goes back to the main topic for the handler that gave up,
/// as a fresh first attempt. The idempotent handlers make a replay of something already done a
/// no-op. `Ok(false)` when there is no such dead letter of this learner, or it was replayed.
pub async fn replay(lab: &NotificationsLab, learner: &str, id: i64) -> anyhow::Result<bool> {
    let Some(dead) = store::claim_replay(&lab.db, learner, id).await? else {
        return Ok(false);
    };
    let event: OrderEvent = serde_json::from_value(dead.payload.clone())?;
    let Some(pipeline) = &lab.pipeline else {
        store::unclaim_replay(&lab.db, id).await?;
        anyhow::bail!("Kafka is not running");
    };
    let delivery = Delivery {
        attempt: 1,
        handlers: Handler::parse(&dead.handler).into_iter().collect(),
        replay_of: Some(id),
        ..Delivery::default()
    };
    let payload = serde_json::to_vec(&event)?;
    let record = FutureRecord::to(&lab.topics.main)
        .key(&event.learner)
        .payload(&payload)
        .headers(delivery.to_headers(event.event_id));
    match pipeline
        .producer
        .send(record, Timeout::After(Duration::from_secs(2)))
        .await
    {
        Ok(sent) => {
            store::journey(
                &lab.db,
                event.event_id,
                learner,
                "replayed",
                json!({ "dead_letter": id, "topic": lab.topics.main,
                        "partition": sent.partition, "offset": sent.offset }),
            )
            .await?;
            Ok(true)
        }
        Err((err, _)) => {
            store::unclaim_replay(&lab.db, id).await?;
            anyhow::bail!("the broker did not take the replay: {err}")
        }
    }
}

/// Resumes a learner's consumer: parked deliveries are dispatched oldest first, then new ones
/// flow again.
pub async fn resume(lab: &NotificationsLab, learner: &str) -> anyhow::Result<usize> {
    let mut faults = store::faults(&lab.db, learner).await?;
    faults.paused = false;
    store::save_faults(&lab.db, learner, &faults).await?;
    let mut drained = 0;
    while let Some(value) = store::unpark_one(&lab.db, learner).await? {
        if let Ok(delivery) = serde_json::from_value::<ParkedDelivery>(value) {
            dispatch(lab, delivery, false).await;
            drained += 1;
        }
    }
    Ok(drained)
}
