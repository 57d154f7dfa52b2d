//! Operational endpoints: liveness, readiness, Prometheus metrics, the generated highlighting
//! stylesheet, and the dev-mode live-reload event stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::Stream;
use serde_json::json;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::app::AppState;

/// Endpoints that skip the page middleware (no session lookup, no CSRF cookie).
pub fn service_router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/highlight.css", get(highlight_css))
        .route("/__livereload", get(livereload))
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when Postgres and Redis both answer within a second.
async fn readyz(State(state): State<AppState>) -> Response {
    let timeout = Duration::from_secs(1);
    let postgres = tokio::time::timeout(timeout, sqlx::query("SELECT 1").execute(&state.db)).await;
    let postgres_ok = matches!(postgres, Ok(Ok(_)));
    let mut redis = state.redis.clone();
    let ping = tokio::time::timeout(
        timeout,
        redis::cmd("PING").query_async::<String>(&mut redis),
    )
    .await;
    let redis_ok = matches!(ping, Ok(Ok(ref pong)) if pong == "PONG");
    let status = if postgres_ok && redis_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let word = |ok: bool| if ok { "ok" } else { "unavailable" };
    (
        status,
        axum::Json(json!({ "postgres": word(postgres_ok), "redis": word(redis_ok) })),
    )
        .into_response()
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut response = state.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

async fn highlight_css(State(state): State<AppState>) -> Response {
    let mut response = state.site.highlight_css.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

/// Dev mode only: one `reload` event each time the content tree is reloaded.
async fn livereload(
    State(state): State<AppState>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, StatusCode> {
    if !state.config.dev {
        return Err(StatusCode::NOT_FOUND);
    }
    let stream = BroadcastStream::new(state.content.subscribe())
        .filter_map(|change| change.ok())
        .map(|_| Ok(Event::default().event("reload").data("content changed")));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
