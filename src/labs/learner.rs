//! Who a lab request belongs to, shared by every lab's live service.
//!
//! [`identify_learner`] is a route layer each lab router installs. It decides whose lab a request
//! is about, in this order: an `X-Lab-Key` header (curl and scripts), else the logged-in user,
//! else an anonymous lab cookie (set on first visit, HttpOnly, SameSite=Lax, 30 days). Handlers
//! take the resulting [`Learner`] as an extractor and keep all lab state under its namespace,
//! which is what isolates one learner's lab from another's.
//!
//! Namespaces are `u<user id>` or `v<16 hex>` (a hash of the visitor cookie, so neither storage
//! keys nor lab keys reveal it). A lab key is `<namespace>.<mac>`, an HMAC of the namespace under
//! the server secret: stateless, and valid on every instance sharing `LABDECK_SECRET`.

use axum::Json;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::accounts::session;
use crate::app::AppState;
use crate::web::error::AppError;
use crate::web::viewer::{Viewer, build_cookie, cookie_names};

/// The header curl sends to act as a learner.
pub const LAB_KEY_HEADER: &str = "x-lab-key";
const LAB_COOKIE_DAYS: i64 = 30;

/// Whose lab a request is about.
#[derive(Debug, Clone)]
pub struct Learner {
    pub namespace: String,
}

impl<S: Send + Sync> FromRequestParts<S> for Learner {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Learner>()
            .cloned()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("learner middleware not installed")))
    }
}

pub async fn identify_learner(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let secure = state.config.secure_cookies();
    let cookie_name = cookie_names(secure).lab;
    let mut new_cookie = None;
    let namespace = if let Some(value) = request.headers().get(LAB_KEY_HEADER) {
        match value
            .to_str()
            .ok()
            .and_then(|key| state.lab_keys.verify(key))
        {
            Some(namespace) => namespace,
            None => {
                return api_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_lab_key",
                    "That X-Lab-Key is not valid here. Copy yours from the lab page.".to_string(),
                );
            }
        }
    } else if let Some(user) = request
        .extensions()
        .get::<Viewer>()
        .and_then(|v| v.user.as_ref())
    {
        user_namespace(user.id)
    } else {
        let jar = CookieJar::from_headers(request.headers());
        let token = match jar.get(cookie_name) {
            Some(cookie) if cookie.value().len() == 43 => cookie.value().to_string(),
            _ => {
                let token = session::new_token();
                new_cookie = Some(token.clone());
                token
            }
        };
        visitor_namespace(&token)
    };
    request.extensions_mut().insert(Learner { namespace });
    let mut response = next.run(request).await;
    if let Some(token) = new_cookie {
        let mut cookie = build_cookie(cookie_name, token, secure);
        cookie.set_max_age(time::Duration::days(LAB_COOKIE_DAYS));
        if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

pub fn api_error(status: StatusCode, error: &str, message: String) -> Response {
    let mut response = (
        status,
        Json(json!({ "error": error, "message": message, "status": status.as_u16() })),
    )
        .into_response();
    no_store(&mut response);
    response
}

pub fn no_store(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// Lab keys let curl act as a learner without their cookies: `<namespace>.<mac>`, where the mac
/// is an HMAC of the namespace under the server secret (stateless; shared by instances that share
/// `LABDECK_SECRET`).
pub struct LabKeys {
    secret: Vec<u8>,
}

impl LabKeys {
    pub fn new(secret: &[u8]) -> LabKeys {
        LabKeys {
            secret: secret.to_vec(),
        }
    }

    pub fn issue(&self, namespace: &str) -> String {
        format!("{namespace}.{}", self.mac(namespace))
    }

    fn mac(&self, namespace: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return String::new();
        };
        mac.update(b"labdeck-lab:");
        mac.update(namespace.as_bytes());
        URL_SAFE_NO_PAD.encode(&mac.finalize().into_bytes()[..16])
    }

    /// The namespace a lab key stands for, if the key is genuine.
    pub fn verify(&self, lab_key: &str) -> Option<String> {
        let (namespace, mac) = lab_key.trim().split_once('.')?;
        let valid = is_namespace(namespace)
            && bool::from(mac.as_bytes().ct_eq(self.mac(namespace).as_bytes()));
        valid.then(|| namespace.to_string())
    }
}

/// The namespace of a logged-in learner.
pub fn user_namespace(user_id: i64) -> String {
    format!("u{user_id}")
}

/// The namespace of an anonymous visitor, from their random lab cookie. Hashed, so neither Redis
/// keys nor lab keys reveal the cookie.
pub fn visitor_namespace(cookie: &str) -> String {
    format!("v{}", hex(&Sha256::digest(cookie.as_bytes())[..8]))
}

fn is_namespace(s: &str) -> bool {
    match s.split_at_checked(1) {
        Some(("u", id)) => !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()),
        Some(("v", hash)) => hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
        _ => false,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_recognised_strictly() {
        assert!(is_namespace("u42"));
        assert!(is_namespace(&visitor_namespace("cookie")));
        for bad in ["", "u", "ux", "v123", "x42", "u4.2", "v0123456789abcdeg"] {
            assert!(!is_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn lab_keys_verify_only_for_the_namespace_and_secret_they_were_issued_for() {
        let keys = LabKeys::new(b"secret-one-that-is-long-enough-0123");
        let key = keys.issue("u42");
        assert_eq!(keys.verify(&key).as_deref(), Some("u42"));
        assert_eq!(keys.verify(&format!(" {key} ")).as_deref(), Some("u42"));
        assert!(keys.verify(&key.replace("u42", "u43")).is_none());
        assert!(keys.verify("u42").is_none());
        assert!(keys.verify("u42.").is_none());
        let other = LabKeys::new(b"secret-two-that-is-long-enough-0123");
        assert!(other.verify(&key).is_none());
    }
}
