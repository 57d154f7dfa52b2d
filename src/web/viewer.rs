//! Who is asking: the [`Viewer`] middleware runs before every handler. It
//!
//! 1. loads the logged-in user from the session cookie (server-side session in Postgres);
//! 2. makes sure the browser has a CSRF seed cookie and derives this visitor's CSRF token from it
//!    with an HMAC (the signed double-submit pattern: a token cannot be forged without the
//!    server key, nor replayed for another browser);
//! 3. refuses any unsafe request (POST, PUT, PATCH, DELETE) whose `csrf_token` form field or
//!    `X-CSRF-Token` header does not match, before a handler sees it;
//! 4. stores the [`Viewer`] in the request for handlers, templates and the error renderer.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, Method, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::assets::SiteInfo;
use super::error::{self, AppError};
use crate::accounts::{User, session};
use crate::app::AppState;

/// Largest urlencoded form body the CSRF check will read.
const MAX_FORM_BYTES: usize = 64 * 1024;

#[derive(Clone, Default)]
pub struct Viewer {
    pub user: Option<User>,
    pub csrf_token: String,
    /// The request came from htmx (`HX-Request: true`): answer with a fragment.
    pub htmx: bool,
    pub site: Arc<SiteInfo>,
}

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.user.as_ref().is_some_and(|u| u.role.is_staff())
    }

    /// The logged-in user, or a redirect to the login page that comes back to `next`.
    pub fn require_user(&self, next: &str) -> Result<&User, AppError> {
        self.user.as_ref().ok_or_else(|| AppError::LoginRequired {
            next: next.to_string(),
        })
    }

    pub fn require_staff(&self, next: &str) -> Result<&User, AppError> {
        let user = self.require_user(next)?;
        if user.role.is_staff() {
            Ok(user)
        } else {
            Err(AppError::Forbidden(
                "This page is for instructors and admins.".to_string(),
            ))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("viewer middleware not installed")))
    }
}

/// Cookie names; the `__Host-` prefix (which requires Secure) is used when serving over TLS.
pub struct CookieNames {
    pub session: &'static str,
    pub csrf: &'static str,
    /// Anonymous visitors' identity in the labs (so visitors get their own lab state).
    pub lab: &'static str,
}

pub fn cookie_names(secure: bool) -> CookieNames {
    if secure {
        CookieNames {
            session: "__Host-labdeck_session",
            csrf: "__Host-labdeck_csrf",
            lab: "__Host-labdeck_lab",
        }
    } else {
        CookieNames {
            session: "labdeck_session",
            csrf: "labdeck_csrf",
            lab: "labdeck_lab",
        }
    }
}

/// A cookie with the flags every labdeck cookie gets.
pub fn build_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .build()
}

/// This browser's CSRF token: an HMAC of its seed cookie (the upload lab's API checks it too).
pub fn csrf_token(secret: &[u8], seed: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(seed.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

pub async fn viewer_middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let secure = state.config.secure_cookies();
    let names = cookie_names(secure);
    let jar = CookieJar::from_headers(request.headers());

    let mut set_cookie = None;
    let seed = match jar.get(names.csrf).map(|c| c.value().to_string()) {
        Some(seed) if seed.len() == 43 => seed,
        _ => {
            let seed = session::new_token();
            set_cookie = Some(build_cookie(names.csrf, seed.clone(), secure));
            seed
        }
    };
    let expected = csrf_token(state.config.secret.expose(), &seed);

    let user = match jar.get(names.session) {
        Some(cookie) => match state.db.acquire().await {
            Ok(mut conn) => session::user_for_token(&mut conn, cookie.value())
                .await
                .unwrap_or_else(|err| {
                    tracing::warn!(error = %err, "session lookup failed");
                    None
                }),
            Err(err) => {
                tracing::warn!(error = %err, "no database connection for session lookup");
                None
            }
        },
        None => None,
    };

    let viewer = Viewer {
        user,
        csrf_token: expected.clone(),
        // A history-restore request wants the whole page even though htmx sent it.
        htmx: request
            .headers()
            .get("HX-Request")
            .is_some_and(|v| v == "true")
            && request
                .headers()
                .get("HX-History-Restore-Request")
                .is_none(),
        site: state.site.clone(),
    };

    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(viewer.clone());
    let request = if is_unsafe(&parts.method) && !is_lab_key_request(&parts) {
        match check_csrf(&parts.headers, body, &expected).await {
            Ok(body) => Request::from_parts(parts, body),
            Err(err) => {
                // Shaped like any handler error: page, toast or JSON.
                let response = error::shape_error(
                    err.into_response(),
                    Some(viewer),
                    error::wants_json(&parts.headers),
                );
                return finish(response, set_cookie);
            }
        }
    } else {
        Request::from_parts(parts, body)
    };
    finish(next.run(request).await, set_cookie)
}

/// A lab API call from a script carries `X-Lab-Key` (checked by the lab's own middleware) instead
/// of cookies and a CSRF token. A browser cannot be made to send a custom header to another origin
/// without a CORS preflight, which labdeck never grants, so such a request cannot be a forgery.
fn is_lab_key_request(parts: &axum::http::request::Parts) -> bool {
    parts.uri.path().starts_with("/labs/")
        && parts
            .headers
            .contains_key(crate::labs::learner::LAB_KEY_HEADER)
}

fn finish(mut response: Response, set_cookie: Option<Cookie<'static>>) -> Response {
    if let Some(cookie) = set_cookie
        && let Ok(value) = cookie.encoded().to_string().parse()
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Checks the submitted token and hands back the body (which had to be read for forms).
async fn check_csrf(headers: &HeaderMap, body: Body, expected: &str) -> Result<Body, AppError> {
    let rejected = || {
        AppError::Forbidden(
            "This form has expired or did not come from labdeck. Reload the page and try again."
                .to_string(),
        )
    };
    let matches = |token: &str| bool::from(token.as_bytes().ct_eq(expected.as_bytes()));
    if let Some(token) = headers.get("X-CSRF-Token").and_then(|v| v.to_str().ok()) {
        return if matches(token) {
            Ok(body)
        } else {
            Err(rejected())
        };
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(rejected());
    }
    let bytes = to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| AppError::BadRequest("That form is too large.".to_string()))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    let token = fields
        .iter()
        .find(|(k, _)| k == "csrf_token")
        .map(|(_, v)| v.as_str());
    match token {
        Some(token) if matches(token) => Ok(Body::from(bytes)),
        _ => Err(rejected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_depend_on_seed_and_secret() {
        let a = csrf_token(b"secret-one", "seed");
        assert_eq!(a, csrf_token(b"secret-one", "seed"));
        assert_ne!(a, csrf_token(b"secret-two", "seed"));
        assert_ne!(a, csrf_token(b"secret-one", "other"));
    }
}
