//! What travels through Kafka: the order event and the delivery metadata in record headers.
//!
//! The record value is the [`OrderEvent`] as JSON, identical on every topic; the key is the
//! learner namespace, so one learner's events share a partition and stay in order. Everything
//! about a delivery — which attempt it is, which handler it is for, when it is due, what went wrong
//! before — travels in headers ([`Delivery`]), the way Spring Kafka's retry topics and most
//! dead-letter tooling do, so a record can be moved between topics without touching its value.

use rdkafka::message::{Headers, OwnedHeaders};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The value of every record on the lab's topics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderEvent {
    pub event_id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub learner: String,
    pub order_id: Uuid,
    pub item: String,
    pub quantity: i32,
    pub amount_cents: i64,
    /// Milliseconds since the Unix epoch, from the server that took the order.
    pub occurred_at_ms: i64,
}

/// The two things the notification service does with an order event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Handler {
    /// Store an in-app notification and push it to the learner's open tabs.
    Push,
    /// Write the confirmation mail to the email outbox.
    Email,
}

impl Handler {
    pub const ALL: [Handler; 2] = [Handler::Push, Handler::Email];

    pub fn id(self) -> &'static str {
        match self {
            Handler::Push => "push",
            Handler::Email => "email",
        }
    }

    pub fn parse(s: &str) -> Option<Handler> {
        Handler::ALL.into_iter().find(|h| h.id() == s)
    }
}

/// One failed attempt, as carried in the `x-history` header and shown in the DLT view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedAttempt {
    pub attempt: u32,
    pub at_ms: i64,
    pub topic: String,
    pub class: String,
    pub error: String,
}

/// Delivery metadata from a record's headers.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Delivery {
    /// 1 for the first delivery (and for a replay from the DLT).
    pub attempt: u32,
    /// The handlers to run; empty means all of them (a fresh event).
    pub handlers: Vec<Handler>,
    /// Not before this time (ms since epoch): set on retry-topic records.
    pub due_at_ms: Option<i64>,
    pub history: Vec<FailedAttempt>,
    /// On DLT records: why it ended there (`fatal` or `exhausted`).
    pub reason: Option<String>,
    /// On replays: the dead letter being replayed.
    pub replay_of: Option<i64>,
    /// On DLT records: the dead letter's own id, so a redelivered record is stored once.
    pub dead_letter_id: Option<Uuid>,
}

pub const H_ATTEMPT: &str = "x-attempt";
pub const H_HANDLER: &str = "x-handler";
pub const H_DUE_AT: &str = "x-due-at";
pub const H_HISTORY: &str = "x-history";
pub const H_REASON: &str = "x-dlt-reason";
pub const H_ERROR: &str = "x-error";
pub const H_REPLAY_OF: &str = "x-replay-of";
pub const H_EVENT_ID: &str = "x-event-id";
pub const H_DEAD_LETTER_ID: &str = "x-dead-letter-id";

impl Delivery {
    pub fn first() -> Delivery {
        Delivery {
            attempt: 1,
            ..Delivery::default()
        }
    }

    pub fn runs(&self, handler: Handler) -> bool {
        self.handlers.is_empty() || self.handlers.contains(&handler)
    }

    /// Reads the headers of a consumed record; missing or unreadable headers mean a first delivery.
    pub fn from_headers<H: Headers>(headers: Option<&H>) -> Delivery {
        let mut delivery = Delivery::first();
        let Some(headers) = headers else {
            return delivery;
        };
        for header in headers.iter() {
            let Some(value) = header.value.and_then(|v| std::str::from_utf8(v).ok()) else {
                continue;
            };
            match header.key {
                H_ATTEMPT => delivery.attempt = value.parse().unwrap_or(1).max(1),
                H_HANDLER => {
                    delivery.handlers = value.split(',').filter_map(Handler::parse).collect()
                }
                H_DUE_AT => delivery.due_at_ms = value.parse().ok(),
                H_HISTORY => delivery.history = serde_json::from_str(value).unwrap_or_default(),
                H_REASON => delivery.reason = Some(value.to_string()),
                H_REPLAY_OF => delivery.replay_of = value.parse().ok(),
                H_DEAD_LETTER_ID => delivery.dead_letter_id = Uuid::parse_str(value).ok(),
                _ => {}
            }
        }
        delivery
    }

    pub fn to_headers(&self, event_id: Uuid) -> OwnedHeaders {
        use rdkafka::message::Header;
        let mut headers = OwnedHeaders::new()
            .insert(Header {
                key: H_EVENT_ID,
                value: Some(&event_id.to_string()),
            })
            .insert(Header {
                key: H_ATTEMPT,
                value: Some(&self.attempt.to_string()),
            });
        if !self.handlers.is_empty() {
            let handlers: Vec<&str> = self.handlers.iter().map(|h| h.id()).collect();
            headers = headers.insert(Header {
                key: H_HANDLER,
                value: Some(&handlers.join(",")),
            });
        }
        if let Some(due) = self.due_at_ms {
            headers = headers.insert(Header {
                key: H_DUE_AT,
                value: Some(&due.to_string()),
            });
        }
        if !self.history.is_empty() {
            let history = serde_json::to_string(&self.history).unwrap_or_else(|_| "[]".into());
            headers = headers.insert(Header {
                key: H_HISTORY,
                value: Some(&history),
            });
            if let Some(last) = self.history.last() {
                headers = headers.insert(Header {
                    key: H_ERROR,
                    value: Some(&last.error),
                });
            }
        }
        if let Some(reason) = &self.reason {
            headers = headers.insert(Header {
                key: H_REASON,
                value: Some(reason),
            });
        }
        if let Some(id) = self.replay_of {
            headers = headers.insert(Header {
                key: H_REPLAY_OF,
                value: Some(&id.to_string()),
            });
        }
        if let Some(id) = self.dead_letter_id {
            headers = headers.insert(Header {
                key: H_DEAD_LETTER_ID,
                value: Some(&id.to_string()),
            });
        }
        headers
    }
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_metadata_survives_a_round_trip_through_headers() {
        let delivery = Delivery {
            attempt: 3,
            handlers: vec![Handler::Email],
            due_at_ms: Some(1_800_000_000_123),
            history: vec![FailedAttempt {
                attempt: 2,
                at_ms: 5,
                topic: "order-events-retry-1s".into(),
                class: "retryable".into(),
                error: "SMTP 451, \"try later\"".into(),
            }],
            reason: Some("exhausted".into()),
            replay_of: Some(42),
            dead_letter_id: Some(Uuid::from_u128(7)),
        };
        let headers = delivery.to_headers(Uuid::nil());
        assert_eq!(Delivery::from_headers(Some(&headers)), delivery);
    }

    #[test]
    fn records_without_headers_are_first_deliveries_for_every_handler() {
        let delivery = Delivery::from_headers::<OwnedHeaders>(None);
        assert_eq!(delivery.attempt, 1);
        assert!(delivery.runs(Handler::Push) && delivery.runs(Handler::Email));
    }
}
