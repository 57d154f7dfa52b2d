//! The HTTP layer: one module per area, each exposing `router()`, merged here with the layers
//! every response goes through.
//!
//! Request flow (outermost first): request id → trace span → security headers → compression →
//! timeout → panic catcher → metrics → [`viewer::viewer_middleware`] (user, CSRF) →
//! [`error::render_errors`] (error page / toast / JSON) → handler.

pub mod assets;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod instructor;
pub mod labs;
pub mod layout;
pub mod lessons;
pub mod ops;
pub mod search;
pub mod viewer;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use error::AppError;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let static_files = Router::new()
        .fallback_service(ServeDir::new(&state.config.static_dir))
        .layer(middleware::from_fn(assets::cache_headers));

    let mut security_headers = vec![
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        ),
        (
            HeaderName::from_static("permissions-policy"),
            HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    if state.config.secure_cookies() {
        security_headers.push((
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        ));
    }
    let mut app = Router::new()
        .merge(lessons::router())
        .merge(auth::router())
        .merge(dashboard::router())
        .merge(search::router())
        .merge(instructor::router())
        .merge(labs::router())
        .merge(crate::labs::rate_limiter::live::router(&state))
        .merge(crate::labs::notifications::live::router(&state))
        .merge(crate::labs::upload::page::router())
        .fallback(|| async { AppError::NotFound })
        .layer(middleware::from_fn(error::render_errors))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            viewer::viewer_middleware,
        ))
        .merge(ops::service_router())
        .nest_service("/static", static_files)
        .layer(middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side.",
            )
                .into_response()
        }))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        // The upload API streams bodies for as long as the client needs (no 30 s timeout) and
        // checks its own CSRF tokens (the viewer middleware would read form bodies to do so).
        .merge(
            crate::labs::upload::api::router(&state)
                .layer(middleware::from_fn(record_metrics))
                .layer(CatchPanicLayer::custom(|_| {
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "Something went wrong on our side.",
                    )
                        .into_response()
                })),
        )
        .layer(CompressionLayer::new())
        .with_state(state);
    for (name, value) in security_headers {
        app = app.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    app.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http().make_span_with(|request: &Request| {
                    let id = request
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
                }),
            )
            .layer(PropagateRequestIdLayer::new(x_request_id)),
    )
}

/// `http_requests_total` and `http_request_duration_seconds`, labelled by route pattern (not raw
/// path, so label cardinality stays bounded).
async fn record_metrics(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| {
            if request.uri().path().starts_with("/static/") {
                "/static".into()
            } else {
                "unmatched".into()
            }
        });
    let method = request.method().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// A page's query string as a map; an unreadable one is an empty map (pages fall back to their
/// defaults instead of refusing to render).
pub fn page_query(raw: Option<&str>) -> std::collections::HashMap<String, String> {
    raw.and_then(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).ok())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Responses that differ between htmx and full-page requests must say so to caches.
pub fn vary_hx_request(mut response: Response) -> Response {
    response
        .headers_mut()
        .append(header::VARY, HeaderValue::from_static("HX-Request"));
    response
}
