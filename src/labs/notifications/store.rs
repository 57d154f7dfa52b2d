//! Everything the notifications lab keeps in PostgreSQL, one function per question or change.
//!
//! Orders and their outbox rows are written in one transaction ([`place_order`]), which is what
//! makes the outbox transactional: an order exists if and only if its event will be published.
//! The consumer side is idempotent by unique keys: one notification and one email per event id,
//! one dead-letter row per DLT record. Notification cursors (`seq`) are assigned under a
//! per-learner transaction lock, so they grow in commit order and a reader that has seen `seq = n`
//! can never later find a row below `n` (a plain `bigserial` can commit out of order).

use serde::Serialize;
use serde_json::Value;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::events::{OrderEvent, now_ms};

/// The channel `LISTEN`ed to for new notifications; the payload is the learner namespace.
pub const NEW_NOTIFICATION_CHANNEL: &str = "labdeck_notify_new";

pub async fn place_order(
    db: &PgPool,
    learner: &str,
    item: &str,
    quantity: i32,
    amount_cents: i64,
) -> sqlx::Result<OrderEvent> {
    let event = OrderEvent {
        event_id: Uuid::new_v4(),
        kind: "order.placed".into(),
        learner: learner.to_string(),
        order_id: Uuid::new_v4(),
        item: item.to_string(),
        quantity,
        amount_cents,
        occurred_at_ms: now_ms(),
    };
    let payload = serde_json::to_value(&event).unwrap_or(Value::Null);
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO notify_orders (id, event_id, learner, item, quantity, amount_cents) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event.order_id)
    .bind(event.event_id)
    .bind(learner)
    .bind(item)
    .bind(quantity)
    .bind(amount_cents)
    .execute(&mut *tx)
    .await?;
    sqlx::query("INSERT INTO notify_outbox (event_id, learner, payload) VALUES ($1, $2, $3)")
        .bind(event.event_id)
        .bind(learner)
        .bind(&payload)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO notify_journey (event_id, learner, stage, detail) VALUES ($1, $2, 'order_placed', $3)",
    )
    .bind(event.event_id)
    .bind(learner)
    .bind(serde_json::json!({ "order_id": event.order_id, "outbox": "written in the order's transaction" }))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(event)
}

/// What placing an order gives back to the caller.
pub struct OrderPlaced {
    pub order_id: Uuid,
    pub event_id: Uuid,
    pub amount_cents: i64,
}

pub struct OutboxRow {
    pub id: i64,
    pub event: OrderEvent,
}

pub struct RelayBatch {
    pub sent: usize,
    pub failed: usize,
}

/// Hands the unsent outbox rows, oldest first, to `publish` and records what it reports per row,
/// holding the relay lock so that only one relay (in any instance) publishes at a time. `None`
/// when another relay holds the lock.
pub async fn with_unsent<F, Fut>(
    db: &PgPool,
    limit: i64,
    publish: F,
) -> sqlx::Result<Option<RelayBatch>>
where
    F: FnOnce(Vec<OutboxRow>) -> Fut,
    Fut: Future<Output = Vec<(i64, Result<(), String>)>>,
{
    let mut tx = db.begin().await?;
    let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock(7451001)")
        .fetch_one(&mut *tx)
        .await?;
    if !locked {
        return Ok(None);
    }
    let rows = sqlx::query(
        "SELECT id, payload FROM notify_outbox WHERE sent_at IS NULL ORDER BY id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut batch = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.get("id");
        match serde_json::from_value::<OrderEvent>(row.get("payload")) {
            Ok(event) => batch.push(OutboxRow { id, event }),
            Err(err) => {
                // Cannot happen for rows we wrote; never let one block the rest.
                sqlx::query(
                    "UPDATE notify_outbox SET sent_at = now(), last_error = $2 WHERE id = $1",
                )
                .bind(id)
                .bind(format!("unreadable payload: {err}"))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    let mut outcome = RelayBatch { sent: 0, failed: 0 };
    for (id, result) in publish(batch).await {
        match result {
            Ok(()) => {
                outcome.sent += 1;
                sqlx::query("UPDATE notify_outbox SET sent_at = now(), publish_attempts = publish_attempts + 1 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            Err(error) => {
                outcome.failed += 1;
                sqlx::query("UPDATE notify_outbox SET publish_attempts = publish_attempts + 1, last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(Some(outcome))
}

/// How many events wait in the outbox (shown on the page while the broker is down).
pub async fn unsent_count(db: &PgPool, learner: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM notify_outbox WHERE learner = $1 AND sent_at IS NULL")
        .bind(learner)
        .fetch_one(db)
        .await
}

pub async fn journey(
    db: &PgPool,
    event_id: Uuid,
    learner: &str,
    stage: &str,
    detail: Value,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notify_journey (event_id, learner, stage, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(event_id)
    .bind(learner)
    .bind(stage)
    .bind(detail)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JourneyStep {
    pub at: chrono::DateTime<chrono::Utc>,
    pub stage: String,
    pub detail: Value,
}

pub async fn journey_of(
    db: &PgPool,
    learner: &str,
    event_id: Uuid,
) -> sqlx::Result<Vec<JourneyStep>> {
    sqlx::query_as(
        "SELECT at, stage, detail FROM notify_journey WHERE event_id = $1 AND learner = $2 ORDER BY id",
    )
    .bind(event_id)
    .bind(learner)
    .fetch_all(db)
    .await
}

/// Stores the notification for an event once. `Some(seq)` when this call stored it, `None` when
/// the event had been handled before (a redelivery or a replay).
pub async fn insert_notification(
    db: &PgPool,
    event: &OrderEvent,
    title: &str,
    body: &str,
) -> sqlx::Result<Option<i64>> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('labdeck-notify:' || $1))")
        .bind(&event.learner)
        .execute(&mut *tx)
        .await?;
    let seq: Option<i64> = sqlx::query_scalar(
        "INSERT INTO notify_notifications (learner, seq, event_id, title, body)
         SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4 FROM notify_notifications WHERE learner = $1
         ON CONFLICT (event_id) DO NOTHING RETURNING seq",
    )
    .bind(&event.learner)
    .bind(event.event_id)
    .bind(title)
    .bind(body)
    .fetch_optional(&mut *tx)
    .await?;
    if seq.is_some() {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(NEW_NOTIFICATION_CHANNEL)
            .bind(&event.learner)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(seq)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Notification {
    pub seq: i64,
    pub event_id: Uuid,
    pub title: String,
    pub body: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub read: bool,
}

/// The learner's notifications with `seq > after`, oldest first.
pub async fn notifications_after(
    db: &PgPool,
    learner: &str,
    after: i64,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notify_notifications
         WHERE learner = $1 AND seq > $2 ORDER BY seq LIMIT $3"
    ))
    .bind(learner)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The newest first, for the page.
pub async fn recent_notifications(
    db: &PgPool,
    learner: &str,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as(&format!(
        "SELECT {NOTIFICATION_COLUMNS} FROM notify_notifications
         WHERE learner = $1 ORDER BY seq DESC LIMIT $2"
    ))
    .bind(learner)
    .bind(limit)
    .fetch_all(db)
    .await
}

const NOTIFICATION_COLUMNS: &str =
    "seq, event_id, title, body, created_at, read_at IS NOT NULL AS read";

/// The learner's newest cursor and unread count.
pub async fn head(db: &PgPool, learner: &str) -> sqlx::Result<(i64, i64)> {
    let row = sqlx::query(
        "SELECT coalesce(max(seq), 0) AS head, count(*) FILTER (WHERE read_at IS NULL) AS unread
         FROM notify_notifications WHERE learner = $1",
    )
    .bind(learner)
    .fetch_one(db)
    .await?;
    Ok((row.get("head"), row.get("unread")))
}

/// Marks the given notifications read (all of them when `seqs` is `None`); returns how many changed.
pub async fn mark_read(db: &PgPool, learner: &str, seqs: Option<&[i64]>) -> sqlx::Result<u64> {
    let result = match seqs {
        Some(seqs) => {
            sqlx::query(
                "UPDATE notify_notifications SET read_at = now()
                 WHERE learner = $1 AND seq = ANY($2) AND read_at IS NULL",
            )
            .bind(learner)
            .bind(seqs)
            .execute(db)
            .await?
        }
        None => {
            sqlx::query(
                "UPDATE notify_notifications SET read_at = now() WHERE learner = $1 AND read_at IS NULL",
            )
            .bind(learner)
            .execute(db)
            .await?
        }
    };
    Ok(result.rows_affected())
}

/// Writes the confirmation mail once per event; `false` when it had been written before.
pub async fn insert_email(
    db: &PgPool,
    event: &OrderEvent,
    recipient: &str,
    subject: &str,
    body: &str,
    attempt: u32,
) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO notify_emails (learner, event_id, recipient, subject, body, attempt)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(&event.learner)
    .bind(event.event_id)
    .bind(recipient)
    .bind(subject)
    .bind(body)
    .bind(attempt as i32)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Email {
    pub event_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempt: i32,
    pub sent_at: chrono::DateTime<chrono::Utc>,
}

pub async fn recent_emails(db: &PgPool, learner: &str, limit: i64) -> sqlx::Result<Vec<Email>> {
    sqlx::query_as(
        "SELECT event_id, recipient, subject, body, attempt, sent_at FROM notify_emails
         WHERE learner = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(learner)
    .bind(limit)
    .fetch_all(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Order {
    pub id: Uuid,
    pub event_id: Uuid,
    pub item: String,
    pub quantity: i32,
    pub amount_cents: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub published: bool,
}

pub async fn recent_orders(db: &PgPool, learner: &str, limit: i64) -> sqlx::Result<Vec<Order>> {
    sqlx::query_as(
        "SELECT o.id, o.event_id, o.item, o.quantity, o.amount_cents, o.created_at,
                x.sent_at IS NOT NULL AS published
         FROM notify_orders o JOIN notify_outbox x ON x.event_id = o.event_id
         WHERE o.learner = $1 ORDER BY o.created_at DESC LIMIT $2",
    )
    .bind(learner)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// The learner's fault knobs for the email handler and the consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Faults {
    /// `ok`, `fail_times` (fail the next `fail_remaining` attempts), `always`, or `fatal`.
    pub email_mode: String,
    pub fail_remaining: i32,
    pub slow_ms: i32,
    pub paused: bool,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            email_mode: "ok".into(),
            fail_remaining: 0,
            slow_ms: 0,
            paused: false,
        }
    }
}

pub async fn faults(db: &PgPool, learner: &str) -> sqlx::Result<Faults> {
    let faults = sqlx::query_as(
        "SELECT email_mode, fail_remaining, slow_ms, paused FROM notify_faults WHERE learner = $1",
    )
    .bind(learner)
    .fetch_optional(db)
    .await?;
    Ok(faults.unwrap_or_default())
}

pub async fn save_faults(db: &PgPool, learner: &str, faults: &Faults) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO notify_faults (learner, email_mode, fail_remaining, slow_ms, paused, updated_at)
         VALUES ($1, $2, $3, $4, $5, now())
         ON CONFLICT (learner) DO UPDATE SET email_mode = $2, fail_remaining = $3, slow_ms = $4,
             paused = $5, updated_at = now()",
    )
    .bind(learner)
    .bind(&faults.email_mode)
    .bind(faults.fail_remaining)
    .bind(faults.slow_ms)
    .bind(faults.paused)
    .execute(db)
    .await?;
    Ok(())
}

/// Uses up one of the "fail N times" failures; `Some(left)` when this attempt must fail.
pub async fn take_failure(db: &PgPool, learner: &str) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar(
        "UPDATE notify_faults SET fail_remaining = fail_remaining - 1
         WHERE learner = $1 AND email_mode = 'fail_times' AND fail_remaining > 0
         RETURNING fail_remaining",
    )
    .bind(learner)
    .fetch_optional(db)
    .await
}

pub struct NewDeadLetter<'a> {
    /// From the record's `x-dead-letter-id` header.
    pub id: Uuid,
    pub event: &'a OrderEvent,
    pub handler: &'a str,
    pub reason: &'a str,
    pub error: &'a str,
    pub attempts: u32,
    pub history: Value,
    pub partition: i32,
    pub offset: i64,
}

/// Stores a record read from the DLT once (by its dead-letter id); returns its row id when new.
pub async fn insert_dead_letter(db: &PgPool, dead: NewDeadLetter<'_>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar(
        "INSERT INTO notify_dead_letters
           (learner, event_id, handler, reason, error, attempts, history, payload, dlt_partition, dlt_offset, dlt_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (dlt_id) DO NOTHING RETURNING id",
    )
    .bind(&dead.event.learner)
    .bind(dead.event.event_id)
    .bind(dead.handler)
    .bind(dead.reason)
    .bind(dead.error)
    .bind(dead.attempts as i32)
    .bind(dead.history)
    .bind(serde_json::to_value(dead.event).unwrap_or(Value::Null))
    .bind(dead.partition)
    .bind(dead.offset)
    .bind(dead.id)
    .fetch_optional(db)
    .await
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DeadLetter {
    pub id: i64,
    pub event_id: Uuid,
    pub handler: String,
    pub reason: String,
    pub error: String,
    pub attempts: i32,
    pub history: Value,
    #[serde(skip)]
    pub payload: Value,
    #[sqlx(rename = "dlt_partition")]
    pub partition: i32,
    #[sqlx(rename = "dlt_offset")]
    pub offset: i64,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub replayed_at: Option<chrono::DateTime<chrono::Utc>>,
}

const DEAD_LETTER_COLUMNS: &str = "id, event_id, handler, reason, error, attempts, history, payload, \
     dlt_partition, dlt_offset, created_at, replayed_at";

pub async fn dead_letters(db: &PgPool, learner: &str, limit: i64) -> sqlx::Result<Vec<DeadLetter>> {
    sqlx::query_as(&format!(
        "SELECT {DEAD_LETTER_COLUMNS} FROM notify_dead_letters WHERE learner = $1 ORDER BY id DESC LIMIT $2"
    ))
    .bind(learner)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Claims a dead letter for replay: `None` unless it is the learner's and not replayed yet.
pub async fn claim_replay(db: &PgPool, learner: &str, id: i64) -> sqlx::Result<Option<DeadLetter>> {
    sqlx::query_as(&format!(
        "UPDATE notify_dead_letters SET replayed_at = now()
         WHERE id = $1 AND learner = $2 AND replayed_at IS NULL RETURNING {DEAD_LETTER_COLUMNS}"
    ))
    .bind(id)
    .bind(learner)
    .fetch_optional(db)
    .await
}

/// Undoes a claim when the replay could not be published.
pub async fn unclaim_replay(db: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE notify_dead_letters SET replayed_at = NULL WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// Parks a delivery while the learner has paused their consumer.
pub async fn park(db: &PgPool, learner: &str, event_id: Uuid, delivery: Value) -> sqlx::Result<()> {
    sqlx::query("INSERT INTO notify_parked (learner, event_id, payload) VALUES ($1, $2, $3)")
        .bind(learner)
        .bind(event_id)
        .bind(delivery)
        .execute(db)
        .await?;
    Ok(())
}

/// Takes the oldest parked delivery of a learner.
pub async fn unpark_one(db: &PgPool, learner: &str) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar(
        "DELETE FROM notify_parked WHERE id = (
             SELECT id FROM notify_parked WHERE learner = $1 ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING payload",
    )
    .bind(learner)
    .fetch_optional(db)
    .await
}

pub async fn parked_count(db: &PgPool, learner: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM notify_parked WHERE learner = $1")
        .bind(learner)
        .fetch_one(db)
        .await
}
