//! The notification service's two handlers and how their failures are classified.
//!
//! Both are idempotent by the event id (unique keys in PostgreSQL), so a redelivery after a
//! rebalance, a duplicate from a producer retry or a replay from the dead-letter topic never
//! stores a second notification or writes a second mail. The email handler obeys the learner's
//! fault knobs, which is how a learner makes it fail and watches retries and the DLT.

use std::time::Duration;

use serde_json::json;
use sqlx::PgPool;

use super::events::{Handler, OrderEvent};
use super::retry::ErrorClass;
use super::store;

/// The longest a "slow handler" knob may stall one delivery.
pub const MAX_SLOW_MS: i32 = 10_000;

#[derive(Debug, Clone, PartialEq)]
pub struct HandlerError {
    pub class: ErrorClass,
    pub message: String,
}

impl HandlerError {
    fn retryable(message: impl Into<String>) -> HandlerError {
        HandlerError {
            class: ErrorClass::Retryable,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for HandlerError {
    /// A database hiccup may pass: worth a retry.
    fn from(err: sqlx::Error) -> HandlerError {
        HandlerError::retryable(format!("database error: {err}"))
    }
}

/// What a successful handler did, for the journey.
#[derive(Debug, Clone, PartialEq)]
pub enum Handled {
    /// A new notification with this cursor.
    Stored {
        seq: i64,
    },
    EmailWritten,
    /// Done before: nothing written this time.
    Duplicate,
}

impl Handled {
    pub fn journey(&self, handler: Handler, attempt: u32) -> (&'static str, serde_json::Value) {
        match self {
            Handled::Stored { seq } => (
                "stored",
                json!({ "handler": handler.id(), "attempt": attempt, "seq": seq }),
            ),
            Handled::EmailWritten => (
                "email_sent",
                json!({ "handler": handler.id(), "attempt": attempt }),
            ),
            Handled::Duplicate => (
                "duplicate",
                json!({ "handler": handler.id(), "attempt": attempt,
                        "note": "already handled: nothing written again" }),
            ),
        }
    }
}

pub async fn run(
    db: &PgPool,
    handler: Handler,
    event: &OrderEvent,
    attempt: u32,
) -> Result<Handled, HandlerError> {
    match handler {
        Handler::Push => push(db, event).await,
        Handler::Email => email(db, event, attempt).await,
    }
}

pub fn describe(event: &OrderEvent) -> (String, String) {
    let amount = format!(
        "${}.{:02}",
        event.amount_cents / 100,
        event.amount_cents % 100
    );
    (
        "Order confirmed".to_string(),
        format!("{} × {} — {amount}", event.quantity, event.item),
    )
}

async fn push(db: &PgPool, event: &OrderEvent) -> Result<Handled, HandlerError> {
    let (title, body) = describe(event);
    Ok(
        match store::insert_notification(db, event, &title, &body).await? {
            Some(seq) => Handled::Stored { seq },
            None => Handled::Duplicate,
        },
    )
}

async fn email(db: &PgPool, event: &OrderEvent, attempt: u32) -> Result<Handled, HandlerError> {
    let faults = store::faults(db, &event.learner).await?;
    if faults.slow_ms > 0 {
        let ms = faults.slow_ms.min(MAX_SLOW_MS) as u64;
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match faults.email_mode.as_str() {
        "always" => {
            return Err(HandlerError::retryable(
                "SMTP 421 4.3.2 service not available (fault knob: always fail)",
            ));
        }
        "fatal" => {
            return Err(HandlerError {
                class: ErrorClass::Fatal,
                message: "SMTP 550 5.1.1 recipient address rejected (fault knob: fatal)".into(),
            });
        }
        "fail_times" => {
            if let Some(left) = store::take_failure(db, &event.learner).await? {
                return Err(HandlerError::retryable(format!(
                    "SMTP 451 4.4.1 temporary failure (fault knob: {left} more to fail)"
                )));
            }
        }
        _ => {}
    }
    let (title, body) = describe(event);
    let recipient = format!("{}@learners.labdeck.test", event.learner);
    let subject = format!("{title}: {}", event.item);
    let text = format!(
        "Thank you for your order.\n\n{body}\nOrder {}\n",
        event.order_id
    );
    Ok(
        if store::insert_email(db, event, &recipient, &subject, &text, attempt).await? {
            Handled::EmailWritten
        } else {
            Handled::Duplicate
        },
    )
}
