//! Sign up, log in and log out.
//!
//! Forms re-render with a specific message on every failure (invalid email, weak password,
//! duplicate account, wrong credentials, too many attempts) and keep what the user typed,
//! except the password. A successful log-in creates a fresh server-side session.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;

use super::error::AppError;
use super::layout::Layout;
use super::viewer::{Viewer, build_cookie, cookie_names};
use crate::accounts::{self, CreateUserError, Email, Role, session};
use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/signup", get(signup_form).post(signup))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only same-site paths may be redirected to after log-in (no open redirect).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/dashboard".to_string(),
    }
}

#[derive(Template)]
#[template(path = "auth/signup.html")]
struct SignupPage {
    layout: Layout,
    email: String,
    display_name: String,
    error: Option<String>,
    next: String,
    min_password: usize,
}

#[derive(Template)]
#[template(path = "auth/login.html")]
struct LoginPage {
    layout: Layout,
    email: String,
    error: Option<String>,
    next: String,
}

async fn signup_form(
    viewer: Viewer,
    Query(query): Query<NextQuery>,
) -> Result<Html<String>, AppError> {
    let page = SignupPage {
        layout: Layout::new(viewer, "Create your account"),
        email: String::new(),
        display_name: String::new(),
        error: None,
        next: safe_next(query.next.as_deref()),
        min_password: accounts::MIN_PASSWORD_LEN,
    };
    Ok(Html(page.render()?))
}

#[derive(Deserialize)]
struct SignupForm {
    email: String,
    display_name: Option<String>,
    password: String,
    next: Option<String>,
}

async fn signup(
    State(state): State<AppState>,
    viewer: Viewer,
    jar: CookieJar,
    Form(form): Form<SignupForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let display_name = form
        .display_name
        .clone()
        .unwrap_or_default()
        .trim()
        .to_string();
    let fail = |viewer: Viewer, message: String| -> Result<Response, AppError> {
        let page = SignupPage {
            layout: Layout::new(viewer, "Create your account"),
            email: form.email.trim().to_string(),
            display_name: display_name.clone(),
            error: Some(message),
            next: next.clone(),
            min_password: accounts::MIN_PASSWORD_LEN,
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, Html(page.render()?)).into_response())
    };
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(message) => return fail(viewer, message),
    };
    if display_name.chars().count() > 60 {
        return fail(
            viewer,
            "Keep your display name under 60 characters.".to_string(),
        );
    }
    if let Err(message) = accounts::check_password_strength(&form.password, email.as_str()) {
        return fail(viewer, message);
    }
    let password = form.password.clone();
    let hash = tokio::task::spawn_blocking(move || accounts::hash_password(&password))
        .await
        .map_err(anyhow::Error::from)??;
    let name = if display_name.is_empty() {
        email
            .as_str()
            .split('@')
            .next()
            .unwrap_or("learner")
            .to_string()
    } else {
        display_name.clone()
    };
    let mut conn = state.db.acquire().await?;
    let user = match accounts::create_user(&mut conn, &email, &name, &hash, Role::Learner).await {
        Ok(user) => user,
        Err(CreateUserError::DuplicateEmail) => {
            return fail(viewer, CreateUserError::DuplicateEmail.to_string());
        }
        Err(CreateUserError::Database(err)) => return Err(err.into()),
    };
    let token = session::create(&mut conn, user.id).await?;
    tracing::info!(user_id = user.id, "account created");
    Ok(logged_in(&state, jar, token, &next))
}

fn logged_in(state: &AppState, jar: CookieJar, token: String, next: &str) -> Response {
    let secure = state.config.secure_cookies();
    let mut cookie = build_cookie(cookie_names(secure).session, token, secure);
    cookie.set_max_age(time_days(session::SESSION_DAYS));
    (jar.add(cookie), Redirect::to(next)).into_response()
}

fn time_days(days: i64) -> time::Duration {
    time::Duration::days(days)
}

async fn login_form(
    viewer: Viewer,
    Query(query): Query<NextQuery>,
) -> Result<Html<String>, AppError> {
    let page = LoginPage {
        layout: Layout::new(viewer, "Log in"),
        email: String::new(),
        error: None,
        next: safe_next(query.next.as_deref()),
    };
    Ok(Html(page.render()?))
}

#[derive(Deserialize)]
struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    let next = safe_next(form.next.as_deref());
    let ip = peer.ip().to_string();
    let page =
        |viewer: Viewer, status: StatusCode, message: String| -> Result<Response, AppError> {
            let page = LoginPage {
                layout: Layout::new(viewer, "Log in"),
                email: form.email.trim().to_string(),
                error: Some(message),
                next: next.clone(),
            };
            Ok((status, Html(page.render()?)).into_response())
        };
    if let Some(wait) = state.throttle.blocked_for(&form.email, &ip).await {
        let minutes = (wait + 59) / 60;
        let message = format!(
            "Too many failed attempts. Try again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        );
        let mut response = page(viewer, StatusCode::TOO_MANY_REQUESTS, message)?;
        if let Ok(value) = wait.to_string().parse() {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
        return Ok(response);
    }
    let mut conn = state.db.acquire().await?;
    let found = accounts::find_by_email(&mut conn, &form.email).await?;
    let password = form.password.clone();
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, accounts::decoy_hash().to_string()),
    };
    let verified = tokio::task::spawn_blocking(move || accounts::verify_password(&password, &hash))
        .await
        .map_err(anyhow::Error::from)?;
    let Some(user) = user.filter(|_| verified) else {
        state.throttle.record_failure(&form.email, &ip).await;
        return page(
            viewer,
            StatusCode::UNAUTHORIZED,
            "That email and password do not match an account.".to_string(),
        );
    };
    state.throttle.record_success(&form.email, &ip).await;
    let token = session::create(&mut conn, user.id).await?;
    Ok(logged_in(&state, jar, token, &next))
}

async fn logout(State(state): State<AppState>, jar: CookieJar) -> Result<Response, AppError> {
    let secure = state.config.secure_cookies();
    let name = cookie_names(secure).session;
    if let Some(cookie) = jar.get(name) {
        let mut conn = state.db.acquire().await?;
        session::delete(&mut conn, cookie.value()).await?;
    }
    let removal = build_cookie(name, String::new(), secure);
    Ok((jar.remove(removal), Redirect::to("/")).into_response())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_local_paths_are_followed_after_login() {
        assert_eq!(safe_next(Some("/lessons/x")), "/lessons/x");
        assert_eq!(safe_next(Some("//evil.example")), "/dashboard");
        assert_eq!(safe_next(Some("https://evil.example")), "/dashboard");
        assert_eq!(safe_next(Some("/\\evil.example")), "/dashboard");
        assert_eq!(safe_next(None), "/dashboard");
    }
}
