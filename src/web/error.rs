//! One error type for every handler.
//!
//! Expected errors carry a message a person can act on; internal errors are logged with their
//! cause and shown as a generic message. [`AppError`] only sets the status and attaches an
//! [`ErrorReport`]; the [`render_errors`] middleware then shapes the body for whoever asked: a
//! full error page for a browser, a toast fragment for an htmx request, JSON for API clients.

use askama::Template;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::layout::Layout;
use super::viewer::Viewer;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("The page you asked for does not exist.")]
    NotFound,
    /// Not logged in: pages redirect to the login form and come back afterwards.
    #[error("Please log in first.")]
    LoginRequired { next: String },
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after_secs: u64,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("Something went wrong on our side. It has been logged; please try again.")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        AppError::Internal(err.into())
    }
}

impl From<askama::Error> for AppError {
    fn from(err: askama::Error) -> Self {
        AppError::Internal(err.into())
    }
}

/// What went wrong, attached to error responses for [`render_errors`].
#[derive(Debug, Clone)]
pub struct ErrorReport {
    pub message: String,
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::LoginRequired { .. } => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let AppError::Internal(cause) = &self {
            tracing::error!(error = ?cause, "internal error");
        }
        let message = self.to_string();
        let mut response = (self.status(), message.clone()).into_response();
        match &self {
            AppError::LoginRequired { next } => {
                let target = format!("/login?next={}", urlencode(next));
                response = Redirect::to(&target).into_response();
                if let Ok(value) = HeaderValue::from_str(&target) {
                    response.headers_mut().insert("HX-Redirect", value);
                }
            }
            AppError::TooManyRequests {
                retry_after_secs, ..
            } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response.extensions_mut().insert(ErrorReport { message });
        response
    }
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|encoded| encoded.trim_start_matches('=').to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    reason: String,
    message: String,
}

#[derive(Template)]
#[template(path = "partials/toast.html")]
struct Toast {
    message: String,
}

/// Rewrites error responses (those carrying an [`ErrorReport`]) into the right shape.
pub async fn render_errors(request: Request, next: Next) -> Response {
    let viewer = request.extensions().get::<Viewer>().cloned();
    let wants_json = wants_json(request.headers());
    let response = next.run(request).await;
    shape_error(response, viewer, wants_json)
}

/// API clients that ask for JSON (and not HTML) get JSON errors.
pub fn wants_json(headers: &header::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json") && !accept.contains("text/html"))
}

/// Gives an error response its body: error page, htmx toast or JSON. Other responses pass.
pub fn shape_error(response: Response, viewer: Option<Viewer>, wants_json: bool) -> Response {
    let Some(report) = response.extensions().get::<ErrorReport>().cloned() else {
        return response;
    };
    let status = response.status();
    if status.is_redirection() {
        return response;
    }
    let htmx = viewer.as_ref().is_some_and(|v| v.htmx);
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = if wants_json {
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        serde_json::json!({ "error": report.message, "status": status.as_u16() }).to_string()
    } else if htmx {
        // The fragment goes to the toast area whatever the request targeted.
        parts
            .headers
            .insert("HX-Retarget", HeaderValue::from_static("#toasts"));
        parts
            .headers
            .insert("HX-Reswap", HeaderValue::from_static("beforeend"));
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        Toast {
            message: report.message,
        }
        .render()
        .unwrap_or_default()
    } else {
        let page = ErrorPage {
            layout: Layout::new(
                viewer.unwrap_or_default(),
                status.canonical_reason().unwrap_or("Error"),
            ),
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("Error").to_string(),
            message: report.message,
        };
        match page.render() {
            Ok(html) => return (parts, Html(html)).into_response(),
            Err(err) => {
                tracing::error!(error = %err, "rendering error page");
                "Something went wrong.".to_string()
            }
        }
    };
    (parts, body).into_response()
}
