//! The lab's HTTP side: the lab page, its forms, the live event stream and the demo API.
//!
//! Every route first goes through [`identify_learner`], which decides whose lab this is: an
//! `X-Lab-Key` header (curl), else the logged-in user, else an anonymous lab cookie (set on first
//! visit, HttpOnly, SameSite=Lax). Handlers then read that learner's settings, pass requests
//! through [`RateLimiterLab::decide`](super::service::RateLimiterLab::decide) and shape the result:
//!
//! - `GET /labs/rate-limiter/api/demo` — the demo API; always JSON, with `RateLimit-Policy`,
//!   `RateLimit`, legacy `X-RateLimit-*`, and `Retry-After` on 429 / 503.
//! - `GET /labs/rate-limiter` — the page (htmx: just the replay fragment for a new replay).
//! - `POST …/settings`, `…/burst`, `…/reset` — plain forms that htmx enhances by swapping their
//!   own fragment.
//! - `GET …/events` — server-sent events: one server-rendered `decision` row and `state` panel
//!   per decision.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use askama::Template;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use futures::{Stream, StreamExt};
use serde_json::json;
use tokio_stream::wrappers::BroadcastStream;

use super::algorithms::Algorithm;
use super::service::{LiveEvent, Outcome, Via, ceil_secs, retry_after_secs};
use super::trace::{self, Pattern, Replay};
use super::{FailurePolicy, KeyType, Settings, api_key_key, ip_key};
use crate::app::AppState;
use crate::labs::learner::{Learner, api_error, identify_learner, no_store};
use crate::web::error::AppError;
use crate::web::layout::Layout;
use crate::web::viewer::Viewer;
use crate::web::{page_query, vary_hx_request};

pub const LAB_PATH: &str = "/labs/rate-limiter";
pub const API_PATH: &str = "/labs/rate-limiter/api/demo";
pub const CHALLENGE_PATH: &str = "/labs/rate-limiter/challenge";
/// The header curl sends to act as a learner.
pub const API_KEY_HEADER: &str = "x-api-key";
/// What a fail-closed 503 asks clients to wait.
const FAIL_CLOSED_RETRY_SECS: u64 = 5;
const MAX_BURST_REQUESTS: u32 = 500;
const MAX_BURST_INTERVAL_MS: u32 = 1000;
const MAX_BURST_DURATION_MS: u32 = 20_000;

pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(LAB_PATH, get(lab_show))
        .route("/labs/rate-limiter/settings", post(settings_update))
        .route("/labs/rate-limiter/burst", post(burst_run))
        .route("/labs/rate-limiter/reset", post(state_reset))
        .route("/labs/rate-limiter/events", get(live_events))
        .route(API_PATH, get(demo_api))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            identify_learner,
        ))
}

// ---------------------------------------------------------------------------------------------
// The demo API

/// The key a request is limited under, or a message saying what is missing.
fn client_key(
    settings: &Settings,
    learner: &Learner,
    ip: IpAddr,
    api_key: Option<&str>,
) -> Result<String, String> {
    match settings.key_type {
        KeyType::Ip => Ok(ip_key(ip)),
        KeyType::User => Ok(format!("user:{}", learner.namespace)),
        KeyType::ApiKey => match api_key.map(str::trim) {
            Some(key) if !key.is_empty() && key.len() <= 200 => Ok(api_key_key(key)),
            _ => Err("This lab limits by API key: send an X-API-Key header (any value up to 200 characters; each value gets its own quota).".to_string()),
        },
    }
}

fn query_cost(raw: Option<&str>, settings: &Settings) -> Result<u32, String> {
    let fields: Vec<(String, String)> = raw
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    match fields.iter().find(|(k, _)| k == "cost") {
        None => Ok(settings.cost),
        Some((_, value)) => value
            .parse::<u32>()
            .ok()
            .filter(|c| (1..=settings.capacity()).contains(c))
            .ok_or_else(|| {
                format!(
                    "cost must be a whole number from 1 to {}.",
                    settings.capacity()
                )
            }),
    }
}

async fn demo_api(
    State(state): State<AppState>,
    learner: Learner,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let lab = &state.rate_limiter;
    let (settings, _) = lab.settings(&learner.namespace).await;
    let api_key = headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let client = match client_key(&settings, &learner, peer.ip(), api_key) {
        Ok(client) => client,
        Err(message) => return api_error(StatusCode::UNAUTHORIZED, "api_key_required", message),
    };
    let cost = match query_cost(query.as_deref(), &settings) {
        Ok(cost) => cost,
        Err(message) => return api_error(StatusCode::BAD_REQUEST, "invalid_cost", message),
    };
    let (outcome, at_ms) = lab
        .decide(&learner.namespace, &settings, &client, cost, Via::Api)
        .await;
    demo_response(&settings, &client, cost, outcome, at_ms)
}

fn header_value(value: String) -> HeaderValue {
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `RateLimit-Policy: "default";q=<limit>;w=<window s>` (IETF draft-ietf-httpapi-ratelimit-headers).
pub fn policy_header(settings: &Settings) -> String {
    format!(
        "\"default\";q={};w={}",
        settings.limit, settings.window_secs
    )
}

fn demo_response(
    settings: &Settings,
    client: &str,
    cost: u32,
    outcome: Outcome,
    at_ms: u64,
) -> Response {
    let algorithm = settings.algorithm;
    let rule = format!(
        "{} per {} s ({}, key {client})",
        settings.limit,
        settings.window_secs,
        algorithm.label().to_lowercase()
    );
    let mut response = match outcome {
        Outcome::Decided { verdict, source } => {
            let decision = verdict.decision;
            let reset_secs = ceil_secs(decision.reset_ms);
            let common = json!({
                "algorithm": algorithm.id(),
                "key": client,
                "cost": cost,
                "limit": settings.limit,
                "window_seconds": settings.window_secs,
                "remaining": decision.remaining,
                "reset_seconds": reset_secs,
                "store": source.id(),
            });
            let (status, mut body) = if decision.allowed {
                let message = format!(
                    "Allowed: {} of {} left under {rule}.",
                    decision.remaining,
                    settings.capacity()
                );
                (StatusCode::OK, json!({ "ok": true, "message": message }))
            } else {
                let wait = retry_after_secs(decision.retry_after_ms);
                let message = if verdict.blocked {
                    format!("Too many requests: {client} is blocked for {wait} s after going over {rule}.")
                } else {
                    format!("Too many requests: over {rule}. Retry in {wait} s.")
                };
                (
                    StatusCode::TOO_MANY_REQUESTS,
                    json!({
                        "error": "rate_limited",
                        "message": message,
                        "retry_after_seconds": wait,
                        "retry_after_ms": decision.retry_after_ms,
                        "blocked": verdict.blocked,
                    }),
                )
            };
            if let (Some(body), Some(common)) = (body.as_object_mut(), common.as_object()) {
                body.extend(common.clone());
            }
            let mut response = (status, Json(body)).into_response();
            let headers = response.headers_mut();
            headers.insert(
                HeaderName::from_static("ratelimit"),
                header_value(format!(
                    "\"default\";r={};t={reset_secs}",
                    decision.remaining
                )),
            );
            headers.insert(
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderValue::from(settings.limit),
            );
            headers.insert(
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderValue::from(decision.remaining),
            );
            headers.insert(
                HeaderName::from_static("x-ratelimit-reset"),
                HeaderValue::from(ceil_secs(at_ms.saturating_add(decision.reset_ms))),
            );
            if !decision.allowed {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(retry_after_secs(decision.retry_after_ms)),
                );
            }
            response
        }
        Outcome::FailedOpen => (
            StatusCode::OK,
            Json(json!({
                "ok": true,
                "message": "Allowed without a check: the limiter's Redis is unreachable and this limit fails open.",
                "policy": FailurePolicy::FailOpen.id(),
                "store": "none",
                "algorithm": algorithm.id(),
                "key": client,
            })),
        )
            .into_response(),
        Outcome::FailedClosed => {
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({
                    "error": "rate_limiter_unavailable",
                    "message": format!("The limiter's Redis is unreachable and this limit fails closed, so the request was refused. Retry in {FAIL_CLOSED_RETRY_SECS} s."),
                    "policy": FailurePolicy::FailClosed.id(),
                    "retry_after_seconds": FAIL_CLOSED_RETRY_SECS,
                    "store": "none",
                    "algorithm": algorithm.id(),
                    "key": client,
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(FAIL_CLOSED_RETRY_SECS));
            response
        }
    };
    response.headers_mut().insert(
        HeaderName::from_static("ratelimit-policy"),
        header_value(policy_header(settings)),
    );
    no_store(&mut response);
    response
}

// ---------------------------------------------------------------------------------------------
// The page

/// One option of a `<select>`.
pub struct Choice {
    pub id: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn choices<T: Copy>(
    all: &[T],
    selected: &str,
    id: impl Fn(T) -> &'static str,
    label: impl Fn(T) -> &'static str,
) -> Vec<Choice> {
    all.iter()
        .map(|&item| Choice {
            id: id(item),
            label: label(item),
            selected: id(item) == selected,
        })
        .collect()
}

/// The settings form, filled from the saved settings or from what the learner just submitted.
pub struct SettingsView {
    pub algorithms: Vec<Choice>,
    pub key_types: Vec<Choice>,
    pub policies: Vec<Choice>,
    pub limit: String,
    pub window_secs: String,
    pub burst: String,
    pub cost: String,
    pub block_secs: String,
    pub error: Option<String>,
    pub saved: bool,
    pub csrf: String,
    /// From the last copy this process saw, because Redis did not answer.
    pub stale: bool,
}

impl SettingsView {
    fn new(form: &HashMap<String, String>, csrf: &str) -> SettingsView {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        SettingsView {
            algorithms: choices(
                &Algorithm::ALL,
                &field("algorithm"),
                Algorithm::id,
                Algorithm::label,
            ),
            key_types: choices(
                &KeyType::ALL,
                &field("key_type"),
                KeyType::id,
                KeyType::label,
            ),
            policies: choices(
                &FailurePolicy::ALL,
                &field("policy"),
                FailurePolicy::id,
                FailurePolicy::label,
            ),
            limit: field("limit"),
            window_secs: field("window_secs"),
            burst: field("burst"),
            cost: field("cost"),
            block_secs: field("block_secs"),
            error: None,
            saved: false,
            csrf: csrf.to_string(),
            stale: false,
        }
    }
}

pub struct Tick {
    pub left: String,
    pub allowed: bool,
    pub title: String,
}

pub struct LaneView {
    pub label: &'static str,
    pub id: &'static str,
    pub ticks: Vec<Tick>,
    pub allowed: usize,
    pub denied: usize,
    pub busiest_window: u64,
    pub bound: u64,
    /// Let more than the limit through in some window.
    pub over_limit: bool,
}

pub struct ReplayView {
    pub patterns: Vec<Choice>,
    pub seed: u64,
    pub limit: u32,
    pub burst: u32,
    pub window_secs: u64,
    pub requests: usize,
    pub boundaries: Vec<String>,
    pub lanes: Vec<LaneView>,
}

impl ReplayView {
    fn new(replay: &Replay) -> ReplayView {
        let lanes = replay
            .lanes
            .iter()
            .map(|lane| LaneView {
                label: lane.algorithm.label(),
                id: lane.algorithm.id(),
                ticks: replay
                    .times
                    .iter()
                    .zip(&lane.decisions)
                    .map(|(at, decision)| Tick {
                        left: replay.position(at),
                        allowed: decision.allowed,
                        title: format!(
                            "t = {:.3} s: {}",
                            *at as f64 / 1000.0,
                            if decision.allowed {
                                format!("allowed, {} left", decision.remaining)
                            } else {
                                format!("denied, retry in {} ms", decision.retry_after_ms)
                            }
                        ),
                    })
                    .collect(),
                allowed: lane.allowed,
                denied: lane.denied,
                busiest_window: lane.busiest_window,
                bound: lane.bound,
                over_limit: lane.busiest_window > u64::from(replay.config.limit),
            })
            .collect();
        ReplayView {
            patterns: choices(
                &Pattern::ALL,
                replay.pattern.id(),
                Pattern::id,
                Pattern::label,
            ),
            seed: replay.seed,
            limit: replay.config.limit,
            burst: replay.config.burst,
            window_secs: replay.config.window_ms / 1000,
            requests: replay.times.len(),
            boundaries: replay
                .boundaries()
                .iter()
                .map(|b| replay.position(b))
                .collect(),
            lanes,
        }
    }
}

pub struct BurstRow {
    pub number: u32,
    pub class: &'static str,
    pub title: String,
}

pub struct BurstView {
    pub rows: Vec<BurstRow>,
    pub allowed: u32,
    pub denied: u32,
    pub failed_open: u32,
    pub failed_closed: u32,
    pub keys: Vec<String>,
    pub summary: String,
}

pub struct LessonLink {
    pub slug: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter.html")]
struct LabPage {
    layout: Layout,
    settings: SettingsView,
    lab_key: String,
    api_url: String,
    visitor: bool,
    redis_ok: bool,
    events: Vec<LiveEvent>,
    state: Option<LiveEvent>,
    burst: Option<BurstView>,
    replay: ReplayView,
    lessons: Vec<LessonLink>,
    reset_done: bool,
    challenge_path: &'static str,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/settings.html")]
struct SettingsPartial {
    settings: SettingsView,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/burst.html")]
struct BurstPartial {
    burst: Option<BurstView>,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/replay.html")]
struct ReplayPartial {
    replay: ReplayView,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/event.html")]
struct EventPartial {
    event: LiveEvent,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/state.html")]
struct StatePartial {
    state: Option<LiveEvent>,
}

#[derive(Template)]
#[template(path = "labs/rate_limiter/reset.html")]
struct ResetPartial {
    reset_done: bool,
}

fn replay_for(settings: &Settings, query: &HashMap<String, String>) -> Replay {
    let pattern = query
        .get("pattern")
        .and_then(|p| Pattern::parse(p))
        .unwrap_or(Pattern::BoundaryBurst);
    let seed = query
        .get("seed")
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1);
    trace::replay(pattern, settings.config(), seed)
}

struct PageParts {
    settings_view: Option<SettingsView>,
    burst: Option<BurstView>,
    query: HashMap<String, String>,
}

async fn render_page(
    state: &AppState,
    viewer: Viewer,
    learner: &Learner,
    parts: PageParts,
) -> Result<String, AppError> {
    let lab = &state.rate_limiter;
    let (settings, redis_ok) = lab.settings(&learner.namespace).await;
    let mut settings_view = parts.settings_view.unwrap_or_else(|| {
        let mut view = SettingsView::new(&settings.as_form(), &viewer.csrf_token);
        view.saved = parts.query.contains_key("saved");
        view
    });
    settings_view.stale = !redis_ok;
    let library = state.content.library();
    let mut lessons: Vec<_> = library
        .lessons()
        .filter(|l| l.meta.lab.as_deref() == Some("rate-limiter") && !l.meta.draft)
        .cloned()
        .collect();
    lessons.sort_by_key(|l| (l.meta.track.clone(), l.meta.order));
    let events = lab.events.recent(&learner.namespace);
    let page = LabPage {
        settings: settings_view,
        lab_key: state.lab_keys.issue(&learner.namespace),
        api_url: format!("{}{API_PATH}", state.config.public_url),
        visitor: viewer.user.is_none(),
        redis_ok,
        state: events.first().cloned(),
        events,
        burst: parts.burst,
        replay: ReplayView::new(&replay_for(&settings, &parts.query)),
        lessons: lessons
            .iter()
            .map(|l| LessonLink {
                slug: l.meta.slug.clone(),
                title: l.meta.title.clone(),
            })
            .collect(),
        reset_done: parts.query.contains_key("reset"),
        challenge_path: CHALLENGE_PATH,
        layout: Layout::new(viewer, "Rate limiter lab"),
    };
    Ok(page.render()?)
}

/// The lab page; an htmx request (the replay form) gets just the replay fragment.
async fn lab_show(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let query = page_query(query.as_deref());
    if viewer.htmx {
        let (settings, _) = state.rate_limiter.settings(&learner.namespace).await;
        let partial = ReplayPartial {
            replay: ReplayView::new(&replay_for(&settings, &query)),
        };
        return Ok(vary_hx_request(Html(partial.render()?).into_response()));
    }
    let parts = PageParts {
        settings_view: None,
        burst: None,
        query,
    };
    let html = render_page(&state, viewer, &learner, parts).await?;
    Ok(vary_hx_request(Html(html).into_response()))
}

fn store_unavailable() -> AppError {
    AppError::Unavailable(
        "The lab's Redis is unreachable right now, so this cannot be saved. Your failure policy still applies to the demo API; try again in a moment.".to_string(),
    )
}

async fn settings_update(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let lab = &state.rate_limiter;
    let (current, _) = lab.settings(&learner.namespace).await;
    match Settings::from_form(&form, current.rev) {
        Ok(settings) => {
            let saved = lab
                .save_settings(&learner.namespace, &settings)
                .await
                .map_err(|_| store_unavailable())?;
            tracing::info!(namespace = %learner.namespace, algorithm = saved.algorithm.id(), rev = saved.rev, "rate-limiter settings saved");
            if !viewer.htmx {
                return Ok(vary_hx_request(
                    Redirect::to(&format!("{LAB_PATH}?saved=1#settings")).into_response(),
                ));
            }
            let mut view = SettingsView::new(&saved.as_form(), &viewer.csrf_token);
            view.saved = true;
            let html = SettingsPartial { settings: view }.render()?;
            Ok(vary_hx_request(Html(html).into_response()))
        }
        Err(message) => {
            let mut view = SettingsView::new(&form, &viewer.csrf_token);
            view.error = Some(message);
            let html = if viewer.htmx {
                SettingsPartial { settings: view }.render()?
            } else {
                let parts = PageParts {
                    settings_view: Some(view),
                    burst: None,
                    query: HashMap::new(),
                };
                render_page(&state, viewer, &learner, parts).await?
            };
            Ok(vary_hx_request(
                (StatusCode::UNPROCESSABLE_ENTITY, Html(html)).into_response(),
            ))
        }
    }
}

async fn state_reset(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
) -> Result<Response, AppError> {
    state
        .rate_limiter
        .reset(&learner.namespace)
        .await
        .map_err(|_| store_unavailable())?;
    if viewer.htmx {
        let html = ResetPartial { reset_done: true }.render()?;
        return Ok(vary_hx_request(Html(html).into_response()));
    }
    Ok(vary_hx_request(
        Redirect::to(&format!("{LAB_PATH}?reset=1#control")).into_response(),
    ))
}

/// A random address inside one /56, as an IPv6 client rotating addresses would use.
fn rotated_ipv6(number: u32) -> IpAddr {
    let low = rand::random::<u64>();
    let subnet = (rand::random::<u16>() & 0x00ff) | 0x4200;
    IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        0x5eed,
        subnet,
        (low >> 48) as u16,
        (low >> 32) as u16,
        (low >> 16) as u16,
        number as u16,
    ))
}

fn form_number(
    form: &HashMap<String, String>,
    name: &str,
    default: u32,
    max: u32,
) -> Result<u32, AppError> {
    match form.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(value) => value
            .parse::<u32>()
            .ok()
            .filter(|n| *n <= max)
            .ok_or_else(|| {
                AppError::BadRequest(format!("{name} must be a whole number from 0 to {max}."))
            }),
    }
}

/// Fires N requests through the real limiter on the server, optionally spaced out.
async fn burst_run(
    State(state): State<AppState>,
    viewer: Viewer,
    learner: Learner,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, AppError> {
    let count = form_number(&form, "count", 20, MAX_BURST_REQUESTS)?.max(1);
    let interval_ms = form_number(&form, "interval_ms", 0, MAX_BURST_INTERVAL_MS)?;
    if count.saturating_sub(1).saturating_mul(interval_ms) > MAX_BURST_DURATION_MS {
        return Err(AppError::BadRequest(format!(
            "Keep a burst under {} s: fewer requests or a shorter interval.",
            MAX_BURST_DURATION_MS / 1000
        )));
    }
    let rotate_ipv6 = form.get("clients").map(String::as_str) == Some("ipv6");
    let api_key = form.get("api_key").map(String::as_str);
    let lab = &state.rate_limiter;
    let (settings, _) = lab.settings(&learner.namespace).await;
    let _permit =
        lab.bursts
            .clone()
            .try_acquire_owned()
            .map_err(|_| AppError::TooManyRequests {
                message:
                    "Several bursts are already running on this server; try again in a moment."
                        .to_string(),
                retry_after_secs: 2,
            })?;
    let mut view = BurstView {
        rows: Vec::new(),
        allowed: 0,
        denied: 0,
        failed_open: 0,
        failed_closed: 0,
        keys: Vec::new(),
        summary: String::new(),
    };
    for number in 1..=count {
        if number > 1 && interval_ms > 0 {
            tokio::time::sleep(Duration::from_millis(u64::from(interval_ms))).await;
        }
        let ip = if rotate_ipv6 {
            rotated_ipv6(number)
        } else {
            peer.ip()
        };
        let client = client_key(&settings, &learner, ip, api_key).map_err(AppError::BadRequest)?;
        let (outcome, _) = lab
            .decide(
                &learner.namespace,
                &settings,
                &client,
                settings.cost,
                Via::Burst,
            )
            .await;
        let (class, detail) = match outcome {
            Outcome::Decided { verdict, source } => {
                let d = verdict.decision;
                if d.allowed {
                    view.allowed += 1;
                    (
                        "is-allowed",
                        format!("allowed, {} left ({})", d.remaining, source.id()),
                    )
                } else {
                    view.denied += 1;
                    (
                        "is-denied",
                        format!(
                            "{}, retry in {} s ({})",
                            if verdict.blocked { "blocked" } else { "denied" },
                            retry_after_secs(d.retry_after_ms),
                            source.id()
                        ),
                    )
                }
            }
            Outcome::FailedOpen => {
                view.failed_open += 1;
                (
                    "is-failed-open",
                    "allowed unchecked: Redis down, fail open".to_string(),
                )
            }
            Outcome::FailedClosed => {
                view.failed_closed += 1;
                (
                    "is-failed-closed",
                    "refused: Redis down, fail closed".to_string(),
                )
            }
        };
        let from = if rotate_ipv6 {
            format!(" from {ip}")
        } else {
            String::new()
        };
        view.rows.push(BurstRow {
            number,
            class,
            title: format!("#{number}{from} → {client}: {detail}"),
        });
        if !view.keys.contains(&client) {
            view.keys.push(client);
        }
    }
    view.summary = format!(
        "{count} requests of cost {} through the {} limiter ({} per {} s).",
        settings.cost,
        settings.algorithm.label().to_lowercase(),
        settings.limit,
        settings.window_secs
    );
    if viewer.htmx {
        let html = BurstPartial { burst: Some(view) }.render()?;
        return Ok(vary_hx_request(Html(html).into_response()));
    }
    let parts = PageParts {
        settings_view: None,
        burst: Some(view),
        query: HashMap::new(),
    };
    let html = render_page(&state, viewer, &learner, parts).await?;
    Ok(vary_hx_request(Html(html).into_response()))
}

// ---------------------------------------------------------------------------------------------
// Live events

fn render_event(event: LiveEvent) -> Vec<Result<Event, Infallible>> {
    let row = EventPartial {
        event: event.clone(),
    }
    .render();
    let panel = StatePartial { state: Some(event) }.render();
    match (row, panel) {
        (Ok(row), Ok(panel)) => vec![
            Ok(Event::default().event("decision").data(row)),
            Ok(Event::default().event("state").data(panel)),
        ],
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(error = %err, "rendering a live rate-limiter event");
            Vec::new()
        }
    }
}

/// Server-sent events: each decision for this learner, as server-rendered fragments.
async fn live_events(
    State(state): State<AppState>,
    learner: Learner,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let receiver = state.rate_limiter.events.subscribe(&learner.namespace);
    // A client too slow to keep up skips the events it missed (Lagged) rather than stalling.
    let stream = BroadcastStream::new(receiver)
        .filter_map(|event| futures::future::ready(event.ok()))
        .flat_map(|event| futures::stream::iter(render_event(event)));
    Sse::new(stream).keep_alive(KeepAlive::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_come_from_the_query_or_the_settings() {
        let settings = Settings {
            limit: 5,
            cost: 2,
            ..Settings::default()
        };
        assert_eq!(query_cost(None, &settings), Ok(2));
        assert_eq!(query_cost(Some("x=1&cost=5"), &settings), Ok(5));
        assert!(query_cost(Some("cost=6"), &settings).is_err());
        assert!(query_cost(Some("cost=0"), &settings).is_err());
        assert!(query_cost(Some("cost=two"), &settings).is_err());
    }

    #[test]
    fn rotated_ipv6_clients_share_one_slash_56_key() {
        let keys: std::collections::HashSet<String> =
            (0..50).map(|n| ip_key(rotated_ipv6(n))).collect();
        assert_eq!(keys.len(), 1, "{keys:?}");
    }

    #[test]
    fn the_policy_header_follows_the_draft() {
        let settings = Settings {
            limit: 100,
            window_secs: 60,
            ..Settings::default()
        };
        assert_eq!(policy_header(&settings), "\"default\";q=100;w=60");
    }
}
