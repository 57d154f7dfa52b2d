//! The lab's HTTP side: the page, its forms, the JSON API and the WebSocket.
//!
//! Every route goes through [`identify_learner`] (account, anonymous lab cookie, or `X-Lab-Key`
//! for curl); every query is scoped to that learner's namespace.
//!
//! - `GET /labs/notifications` — the page; `?fragment=activity` is the part htmx polls (orders
//!   with their journeys, mails, dead letters).
//! - forms: `…/orders`, `…/faults`, `…/read-all`, `…/dead-letters/{id}/replay` (303 back to the
//!   page; htmx swaps the panels from it).
//! - JSON: `POST …/api/orders`, `GET …/api/notifications?after=<cursor>`,
//!   `POST …/api/notifications/read`, `GET …/api/dead-letters`,
//!   `POST …/api/dead-letters/{id}/replay`, `GET …/api/events/{event_id}`, `PUT …/api/faults`,
//!   `GET …/api/emails`.
//! - `GET …/ws?after=<cursor>` — the live feed: catch-up from the cursor, then each new
//!   notification once, in cursor order; the browser acknowledges each one.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::kafka::BrokerMode;
use super::pipeline;
use super::service::{KafkaStatus, NotificationsLab};
use super::store::{self, DeadLetter, Email, Faults, JourneyStep, Notification, Order};
use crate::app::AppState;
use crate::labs::learner::{Learner, api_error, identify_learner, no_store};
use crate::web::error::AppError;
use crate::web::layout::Layout;
use crate::web::viewer::Viewer;
use crate::web::{page_query, vary_hx_request};

pub const LAB_PATH: &str = "/labs/notifications";
const MAX_ITEM_CHARS: usize = 100;
const MAX_QUANTITY: i32 = 1000;
const UNIT_PRICE_CENTS: i64 = 1_999;
const PAGE_SIZE: i64 = 100;
/// Catch-up batches on the WebSocket.
const WS_BATCH: i64 = 200;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(LAB_PATH, get(lab_show))
        .route("/labs/notifications/orders", post(order_form))
        .route("/labs/notifications/faults", post(faults_form))
        .route("/labs/notifications/read-all", post(read_all_form))
        .route(
            "/labs/notifications/dead-letters/{id}/replay",
            post(replay_form),
        )
        .route("/labs/notifications/ws", get(websocket))
        .route("/labs/notifications/api/orders", post(order_api))
        .route(
            "/labs/notifications/api/notifications",
            get(notifications_api),
        )
        .route("/labs/notifications/api/notifications/read", post(read_api))
        .route(
            "/labs/notifications/api/dead-letters",
            get(dead_letters_api),
        )
        .route(
            "/labs/notifications/api/dead-letters/{id}/replay",
            post(replay_api),
        )
        .route(
            "/labs/notifications/api/events/{event_id}",
            get(journey_api),
        )
        .route(
            "/labs/notifications/api/faults",
            get(faults_get_api).put(faults_put_api),
        )
        .route("/labs/notifications/api/emails", get(emails_api))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            identify_learner,
        ))
}

// ---------------------------------------------------------------------------------------------
// Input

#[derive(Debug, Deserialize)]
pub struct OrderInput {
    pub item: Option<String>,
    pub quantity: Option<serde_json::Value>,
}

struct ValidOrder {
    item: String,
    quantity: i32,
}

fn validate_order(item: Option<&str>, quantity: Option<&str>) -> Result<ValidOrder, String> {
    let item = item.map(str::trim).unwrap_or_default();
    if item.is_empty() {
        return Err("Say what is ordered: `item` must not be empty.".into());
    }
    if item.chars().count() > MAX_ITEM_CHARS {
        return Err(format!("`item` is at most {MAX_ITEM_CHARS} characters."));
    }
    if item.chars().any(char::is_control) {
        return Err("`item` must not contain control characters.".into());
    }
    let quantity = match quantity.map(str::trim) {
        None | Some("") => 1,
        Some(q) => match q.parse::<i32>() {
            Ok(q) if (1..=MAX_QUANTITY).contains(&q) => q,
            _ => {
                return Err(format!(
                    "`quantity` must be a whole number from 1 to {MAX_QUANTITY}."
                ));
            }
        },
    };
    Ok(ValidOrder {
        item: item.to_string(),
        quantity,
    })
}

fn quantity_text(value: &Option<serde_json::Value>) -> Option<String> {
    match value {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    }
}

/// Validates and places an order: the order and its outbox row are one transaction.
async fn place(
    lab: &NotificationsLab,
    learner: &Learner,
    order: ValidOrder,
) -> Result<store::OrderPlaced, AppError> {
    let amount = UNIT_PRICE_CENTS * i64::from(order.quantity);
    let event = store::place_order(
        &lab.db,
        &learner.namespace,
        &order.item,
        order.quantity,
        amount,
    )
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    lab.outbox_wake.notify_one();
    metrics::counter!("notifications_orders_total").increment(1);
    Ok(store::OrderPlaced {
        order_id: event.order_id,
        event_id: event.event_id,
        amount_cents: amount,
    })
}

fn lab_unavailable(lab: &NotificationsLab) -> Option<Response> {
    match &lab.status {
        KafkaStatus::Running { .. } => None,
        KafkaStatus::Disabled => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka_disabled",
            "Kafka is switched off on this server (--no-kafka), so the notifications lab is not running.".into(),
        )),
        KafkaStatus::Failed(err) => Some(api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka_unavailable",
            format!("The notifications lab could not set up its Kafka clients: {err}"),
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// JSON API

async fn order_api(
    State(state): State<AppState>,
    learner: Learner,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let lab = &state.notifications;
    if let Some(response) = lab_unavailable(lab) {
        return Ok(response);
    }
    let input: OrderInput = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(err) => {
            return Ok(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "The body must be a JSON object like {{\"item\": \"Coffee\", \"quantity\": 2}}: {err}"
                ),
            ));
        }
    };
    let order = match validate_order(
        input.item.as_deref(),
        quantity_text(&input.quantity).as_deref(),
    ) {
        Ok(order) => order,
        Err(message) => {
            return Ok(api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_order",
                message,
            ));
        }
    };
    let placed = place(lab, &learner, order).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "order_id": placed.order_id,
            "event_id": placed.event_id,
            "amount_cents": placed.amount_cents,
            "journey": format!("{LAB_PATH}/api/events/{}", placed.event_id),
        })),
    )
        .into_response();
    no_store(&mut response);
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct CursorQuery {
    after: Option<String>,
    limit: Option<String>,
}

fn parse_cursor(raw: Option<&str>) -> Result<i64, String> {
    match raw.map(str::trim) {
        None | Some("") => Ok(0),
        Some(s) => s
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                "`after` is a cursor the server gave you (a whole number ≥ 0, e.g. the `next_after` of the last page); timestamps are not accepted.".to_string()
            }),
    }
}

async fn notifications_api(
    State(state): State<AppState>,
    learner: Learner,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let query: CursorQuery = match serde_urlencoded::from_str(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(err) => {
            return Ok(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                err.to_string(),
            ));
        }
    };
    let after = match parse_cursor(query.after.as_deref()) {
        Ok(after) => after,
        Err(message) => {
            return Ok(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_cursor",
                message,
            ));
        }
    };
    let limit = match query.limit.as_deref().map(str::parse::<i64>) {
        None => 50,
        Some(Ok(n)) if (1..=PAGE_SIZE).contains(&n) => n,
        Some(_) => {
            return Ok(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_limit",
                format!("`limit` must be from 1 to {PAGE_SIZE}."),
            ));
        }
    };
    let db = &state.notifications.db;
    let rows = store::notifications_after(db, &learner.namespace, after, limit + 1)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let (head, unread) = store::head(db, &learner.namespace)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let has_more = rows.len() as i64 > limit;
    let rows: Vec<Notification> = rows.into_iter().take(limit as usize).collect();
    let next_after = rows.last().map(|n| n.seq).unwrap_or(after);
    let mut response = Json(json!({
        "notifications": rows,
        "next_after": next_after,
        "has_more": has_more,
        "head": head,
        "unread": unread,
    }))
    .into_response();
    no_store(&mut response);
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct ReadInput {
    /// The cursors to mark read; absent means all.
    seqs: Option<Vec<i64>>,
}

async fn read_api(
    State(state): State<AppState>,
    learner: Learner,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let input: ReadInput = if body.is_empty() {
        ReadInput { seqs: None }
    } else {
        match serde_json::from_slice(&body) {
            Ok(input) => input,
            Err(err) => {
                return Ok(api_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    format!(
                        "Send {{\"seqs\": [1, 2]}} to mark some read, or an empty body for all: {err}"
                    ),
                ));
            }
        }
    };
    if input.seqs.as_ref().is_some_and(|s| s.len() > 1000) {
        return Ok(api_error(
            StatusCode::BAD_REQUEST,
            "too_many",
            "Mark at most 1000 at a time (or send no list to mark all).".into(),
        ));
    }
    let db = &state.notifications.db;
    let changed = store::mark_read(db, &learner.namespace, input.seqs.as_deref())
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let (head, unread) = store::head(db, &learner.namespace)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(json!({ "marked": changed, "unread": unread, "head": head })).into_response())
}

async fn dead_letters_api(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Response, AppError> {
    let rows = store::dead_letters(&state.notifications.db, &learner.namespace, 100)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut response = Json(json!({ "dead_letters": rows })).into_response();
    no_store(&mut response);
    Ok(response)
}

/// Replays a dead letter; the message says what happened in words.
async fn replay(
    lab: &NotificationsLab,
    learner: &Learner,
    id: i64,
) -> Result<(), (StatusCode, &'static str, String)> {
    if lab.pipeline.is_none() {
        return Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "kafka_unavailable",
            "Kafka is not running here, so nothing can be replayed.".into(),
        ));
    }
    match pipeline::replay(lab, &learner.namespace, id).await {
        Ok(true) => Ok(()),
        Ok(false) => Err((
            StatusCode::CONFLICT,
            "not_replayable",
            format!("Dead letter {id} is not one of yours, or it has been replayed already."),
        )),
        Err(err) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            "broker_unavailable",
            format!("{err:#}. Nothing was lost: try the replay again in a moment."),
        )),
    }
}

async fn replay_api(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<i64>,
) -> Response {
    match replay(&state.notifications, &learner, id).await {
        Ok(()) => (
            StatusCode::ACCEPTED,
            Json(json!({ "replayed": id, "message": "Sent back to the main topic as a fresh first attempt." })),
        )
            .into_response(),
        Err((status, code, message)) => api_error(status, code, message),
    }
}

async fn journey_api(
    State(state): State<AppState>,
    learner: Learner,
    Path(event_id): Path<String>,
) -> Result<Response, AppError> {
    let Ok(event_id) = Uuid::parse_str(event_id.trim()) else {
        return Ok(api_error(
            StatusCode::BAD_REQUEST,
            "invalid_event_id",
            "An event id is a UUID, as returned by POST /labs/notifications/api/orders.".into(),
        ));
    };
    let steps = store::journey_of(&state.notifications.db, &learner.namespace, event_id)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    if steps.is_empty() {
        return Ok(api_error(
            StatusCode::NOT_FOUND,
            "unknown_event",
            "No event of yours has that id.".into(),
        ));
    }
    let mut response = Json(json!({ "event_id": event_id, "journey": steps })).into_response();
    no_store(&mut response);
    Ok(response)
}

#[derive(Debug, Deserialize)]
struct FaultsInput {
    email_mode: Option<String>,
    fail_times: Option<serde_json::Value>,
    slow_ms: Option<serde_json::Value>,
    paused: Option<serde_json::Value>,
}

fn parse_faults(input: &HashMap<String, String>) -> Result<Faults, String> {
    let mode = input.get("email_mode").map(|s| s.trim()).unwrap_or("ok");
    if !["ok", "fail_times", "always", "fatal"].contains(&mode) {
        return Err("`email_mode` is one of ok, fail_times, always, fatal.".into());
    }
    let number = |name: &str, max: i32| -> Result<i32, String> {
        match input.get(name).map(|s| s.trim()) {
            None | Some("") => Ok(0),
            Some(v) => v
                .parse::<i32>()
                .ok()
                .filter(|n| (0..=max).contains(n))
                .ok_or_else(|| format!("`{name}` must be a whole number from 0 to {max}.")),
        }
    };
    let fail_times = number("fail_times", 100)?;
    if mode == "fail_times" && fail_times == 0 {
        return Err("With `fail_times`, say how many attempts should fail (1 to 100).".into());
    }
    let slow_ms = number("slow_ms", super::handlers::MAX_SLOW_MS)?;
    let paused = matches!(
        input.get("paused").map(|s| s.trim()),
        Some("on" | "true" | "1" | "yes")
    );
    Ok(Faults {
        email_mode: mode.to_string(),
        fail_remaining: if mode == "fail_times" { fail_times } else { 0 },
        slow_ms,
        paused,
    })
}

/// Saves the knobs; turning "paused" off drains what was parked meanwhile.
async fn apply_faults(
    lab: &NotificationsLab,
    learner: &Learner,
    faults: &Faults,
) -> Result<usize, AppError> {
    let before = store::faults(&lab.db, &learner.namespace)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut to_save = faults.clone();
    let resuming = before.paused && !faults.paused;
    if resuming {
        // Saved as paused until the drain below has emptied the parking lot.
        to_save.paused = true;
    }
    store::save_faults(&lab.db, &learner.namespace, &to_save)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    if resuming {
        return pipeline::resume(lab, &learner.namespace)
            .await
            .map_err(AppError::Internal);
    }
    Ok(0)
}

async fn faults_get_api(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Response, AppError> {
    let faults = store::faults(&state.notifications.db, &learner.namespace)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(faults).into_response())
}

async fn faults_put_api(
    State(state): State<AppState>,
    learner: Learner,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let input: FaultsInput = match serde_json::from_slice(&body) {
        Ok(input) => input,
        Err(err) => {
            return Ok(api_error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!(
                    "Send e.g. {{\"email_mode\": \"fail_times\", \"fail_times\": 2, \"slow_ms\": 0, \"paused\": false}}: {err}"
                ),
            ));
        }
    };
    let mut map = HashMap::new();
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if let Some(mode) = input.email_mode {
        map.insert("email_mode".to_string(), mode);
    }
    if let Some(v) = &input.fail_times {
        map.insert("fail_times".into(), text(v));
    }
    if let Some(v) = &input.slow_ms {
        map.insert("slow_ms".into(), text(v));
    }
    if let Some(v) = &input.paused {
        map.insert("paused".into(), text(v));
    }
    let faults = match parse_faults(&map) {
        Ok(faults) => faults,
        Err(message) => {
            return Ok(api_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_faults",
                message,
            ));
        }
    };
    let resumed = apply_faults(&state.notifications, &learner, &faults).await?;
    Ok(Json(json!({ "faults": faults, "resumed": resumed })).into_response())
}

async fn emails_api(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    let rows = store::recent_emails(&state.notifications.db, &learner.namespace, 100)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut response = Json(json!({ "emails": rows })).into_response();
    no_store(&mut response);
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// The page and its forms

struct JourneyView {
    event_id: Uuid,
    item: String,
    steps: Vec<JourneyStep>,
}

#[derive(Template)]
#[template(path = "labs/notifications.html")]
struct LabPage {
    layout: Layout,
    kafka: String,
    embedded: bool,
    running: bool,
    lab_key: String,
    base_url: String,
    notifications: Vec<Notification>,
    head: i64,
    unread: i64,
    faults: Faults,
    flash: Option<String>,
    error: Option<String>,
    activity_html: String,
    poll_url: String,
}

#[derive(Template)]
#[template(
    source = r#"<p class="form-ok" role="status">Order placed. <a href="/labs/notifications?event={{ event_id }}#journey">Follow its journey</a>.</p>"#,
    ext = "html"
)]
struct OrderPlacedPartial {
    event_id: Uuid,
}

#[derive(Template)]
#[template(path = "labs/notifications/activity.html")]
struct Activity {
    orders: Vec<Order>,
    journey: Option<JourneyView>,
    emails: Vec<Email>,
    dead_letters: Vec<DeadLetter>,
    unsent: i64,
    parked: i64,
    csrf: String,
    poll_url: String,
}

impl Activity {
    fn stage_label(&self, step: &JourneyStep) -> &'static str {
        match step.stage.as_str() {
            "order_placed" => "order stored + outbox row (one transaction)",
            "published" => "published to Kafka",
            "publish_failed" => "publish failed, kept in outbox",
            "consumed" => "consumed",
            "stored" => "notification stored",
            "email_sent" => "email written",
            "duplicate" => "duplicate ignored",
            "handler_failed" => "handler failed",
            "retry_scheduled" => "sent to retry topic",
            "dead_lettered" => "sent to dead-letter topic",
            "dlt_stored" => "dead letter stored",
            "parked" => "parked (consumer paused)",
            "replayed" => "replayed from the DLT",
            "pushed" => "pushed over WebSocket",
            "acked" => "acknowledged by the browser",
            _ => "step",
        }
    }

    fn amount(&self, order: &Order) -> String {
        format!(
            "${}.{:02}",
            order.amount_cents / 100,
            order.amount_cents % 100
        )
    }

    fn detail(&self, step: &JourneyStep) -> String {
        let Some(map) = step.detail.as_object() else {
            return String::new();
        };
        map.iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · ")
    }
}

async fn activity(
    lab: &NotificationsLab,
    learner: &Learner,
    csrf: &str,
    event: Option<Uuid>,
) -> Result<Activity, AppError> {
    let db = &lab.db;
    let ns = &learner.namespace;
    let internal = |e: sqlx::Error| AppError::Internal(e.into());
    let orders = store::recent_orders(db, ns, 10).await.map_err(internal)?;
    let selected = event.or_else(|| orders.first().map(|o| o.event_id));
    let journey = match selected {
        Some(event_id) => {
            let steps = store::journey_of(db, ns, event_id)
                .await
                .map_err(internal)?;
            let item = orders
                .iter()
                .find(|o| o.event_id == event_id)
                .map(|o| o.item.clone())
                .unwrap_or_default();
            (!steps.is_empty()).then_some(JourneyView {
                event_id,
                item,
                steps,
            })
        }
        None => None,
    };
    let poll_url = match selected {
        Some(id) => format!("{LAB_PATH}?fragment=activity&event={id}"),
        None => format!("{LAB_PATH}?fragment=activity"),
    };
    Ok(Activity {
        orders,
        journey,
        emails: store::recent_emails(db, ns, 10).await.map_err(internal)?,
        dead_letters: store::dead_letters(db, ns, 20).await.map_err(internal)?,
        unsent: store::unsent_count(db, ns).await.map_err(internal)?,
        parked: store::parked_count(db, ns).await.map_err(internal)?,
        csrf: csrf.to_string(),
        poll_url,
    })
}

async fn render_page(
    state: &AppState,
    viewer: Viewer,
    learner: &Learner,
    query: &HashMap<String, String>,
    error: Option<String>,
) -> Result<Response, AppError> {
    let lab = &state.notifications;
    let event = query.get("event").and_then(|e| Uuid::parse_str(e).ok());
    if query.get("fragment").map(String::as_str) == Some("activity") {
        let html = activity(lab, learner, &viewer.csrf_token, event)
            .await?
            .render()?;
        return Ok(vary_hx_request(Html(html).into_response()));
    }
    let db = &lab.db;
    let internal = |e: sqlx::Error| AppError::Internal(e.into());
    let (head, unread) = store::head(db, &learner.namespace)
        .await
        .map_err(internal)?;
    let (kafka, embedded, running) = match &lab.status {
        KafkaStatus::Running { mode, brokers } => (
            match mode {
                BrokerMode::Embedded => format!(
                    "embedded broker (librdkafka's in-process mock cluster at {brokers}); set KAFKA_BROKERS to use a real cluster"
                ),
                BrokerMode::External => format!("Kafka cluster at {brokers}"),
            },
            *mode == BrokerMode::Embedded,
            true,
        ),
        KafkaStatus::Disabled => ("switched off (--no-kafka)".to_string(), false, false),
        KafkaStatus::Failed(err) => (format!("unavailable: {err}"), false, false),
    };
    let flash = query.get("done").map(|what| match what.as_str() {
        "order" => "Order placed. Watch it travel below.".to_string(),
        "faults" => "Fault knobs saved.".to_string(),
        "read" => "All notifications marked read.".to_string(),
        "replay" => "Dead letter replayed to the main topic.".to_string(),
        _ => "Done.".to_string(),
    });
    let activity = activity(lab, learner, &viewer.csrf_token, event).await?;
    let poll_url = activity.poll_url.clone();
    let activity_html = activity.render()?;
    let page = LabPage {
        kafka,
        embedded,
        running,
        lab_key: state.lab_keys.issue(&learner.namespace),
        base_url: state.config.public_url.clone(),
        notifications: store::recent_notifications(db, &learner.namespace, 20)
            .await
            .map_err(internal)?,
        head,
        unread,
        faults: store::faults(db, &learner.namespace)
            .await
            .map_err(internal)?,
        flash,
        error,
        activity_html,
        poll_url,
        layout: Layout::new(viewer, "Notifications lab"),
    };
    Ok(vary_hx_request(Html(page.render()?).into_response()))
}

async fn lab_show(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    render_page(
        &state,
        viewer,
        &learner,
        &page_query(query.as_deref()),
        None,
    )
    .await
}

fn back(done: &str) -> Response {
    Redirect::to(&format!("{LAB_PATH}?done={done}")).into_response()
}

/// A form error: the page again with the message, as a 422 so htmx and tests can tell.
async fn form_error(
    state: &AppState,
    viewer: Viewer,
    learner: &Learner,
    message: String,
) -> Result<Response, AppError> {
    let mut response = render_page(state, viewer, learner, &HashMap::new(), Some(message)).await?;
    *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    Ok(response)
}

async fn order_form(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    if !state.notifications.running() {
        return Err(AppError::Unavailable(
            "Kafka is not running on this server, so orders cannot be taken.".into(),
        ));
    }
    match validate_order(
        form.get("item").map(String::as_str),
        form.get("quantity").map(String::as_str),
    ) {
        Ok(order) => {
            let placed = place(&state.notifications, &learner, order).await?;
            if viewer.htmx {
                // The page stays put: the notification arrives over the WebSocket.
                let html = OrderPlacedPartial {
                    event_id: placed.event_id,
                }
                .render()?;
                return Ok(vary_hx_request(Html(html).into_response()));
            }
            Ok(back("order"))
        }
        Err(message) => form_error(&state, viewer, &learner, message).await,
    }
}

async fn faults_form(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    match parse_faults(&form) {
        Ok(faults) => {
            apply_faults(&state.notifications, &learner, &faults).await?;
            Ok(back("faults"))
        }
        Err(message) => form_error(&state, viewer, &learner, message).await,
    }
}

async fn read_all_form(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Response, AppError> {
    store::mark_read(&state.notifications.db, &learner.namespace, None)
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    Ok(back("read"))
}

async fn replay_form(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    match replay(&state.notifications, &learner, id).await {
        Ok(()) => Ok(back("replay")),
        Err((_, _, message)) => form_error(&state, viewer, &learner, message).await,
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// Cross-site WebSocket hijacking: browsers send cookies with a WebSocket handshake from any
/// origin, so a handshake whose `Origin` is not this site is refused.
fn same_origin(headers: &HeaderMap, public_url: &str) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser (curl, websocat): it has no ambient cookies to abuse.
        return true;
    };
    if origin.trim_end_matches('/') == public_url {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host)
}

async fn websocket(
    State(state): State<AppState>,
    learner: Learner,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers, &state.config.public_url) {
        return api_error(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "WebSocket connections are only accepted from this site's own pages.".into(),
        );
    }
    let query: CursorQuery =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or(CursorQuery {
            after: None,
            limit: None,
        });
    let after = match parse_cursor(query.after.as_deref()) {
        Ok(after) => after,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "invalid_cursor", message),
    };
    let lab = state.notifications.clone();
    upgrade
        .max_message_size(4096)
        .on_upgrade(move |socket| feed(lab, learner.namespace, after, socket))
}

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    seq: Option<i64>,
}

/// One browser tab's feed: everything after its cursor, then each new row once.
async fn feed(lab: Arc<NotificationsLab>, learner: String, mut cursor: i64, mut socket: WebSocket) {
    let mut wakeups = lab.wakeups.subscribe();
    let hello = match store::head(&lab.db, &learner).await {
        Ok((head, unread)) => {
            json!({ "type": "hello", "head": head, "unread": unread, "after": cursor })
        }
        Err(_) => return,
    };
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        // Send everything after the cursor (the catch-up on connect, then each wake-up's rows).
        loop {
            let rows = match store::notifications_after(&lab.db, &learner, cursor, WS_BATCH).await {
                Ok(rows) => rows,
                Err(_) => return,
            };
            let full = rows.len() as i64 == WS_BATCH;
            for row in rows {
                cursor = row.seq;
                let message = json!({ "type": "notification", "notification": row });
                if socket
                    .send(Message::Text(message.to_string().into()))
                    .await
                    .is_err()
                {
                    return;
                }
                let _ = store::journey(
                    &lab.db,
                    row.event_id,
                    &learner,
                    "pushed",
                    json!({ "seq": row.seq, "via": "websocket" }),
                )
                .await;
            }
            if !full {
                break;
            }
        }
        tokio::select! {
            wake = wakeups.recv() => match wake {
                Ok(who) if who == learner || who == super::hub::EVERYONE => {}
                Ok(_) => continue,
                // Missed some wake-ups: re-reading is always safe.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(message) = serde_json::from_str::<ClientMessage>(&text)
                        && message.kind == "ack"
                        && let Some(seq) = message.seq
                    {
                        acknowledge(&lab, &learner, seq).await;
                    }
                    continue;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => continue,
            },
        }
    }
}

async fn acknowledge(lab: &NotificationsLab, learner: &str, seq: i64) {
    if let Ok(rows) = store::notifications_after(&lab.db, learner, seq - 1, 1).await
        && let Some(row) = rows.first()
        && row.seq == seq
    {
        let _ = store::journey(
            &lab.db,
            row.event_id,
            learner,
            "acked",
            json!({ "seq": seq, "by": "browser" }),
        )
        .await;
    }
}
