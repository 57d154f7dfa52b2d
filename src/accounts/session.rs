//! Server-side sessions in Postgres. The browser holds a random 256-bit token in an HttpOnly
//! cookie; the table holds only its SHA-256, the user and an expiry. Every log-in creates a new
//! session (no fixation), log-out deletes it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

use super::{Role, User};

pub const SESSION_DAYS: i64 = 14;

fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Creates a session for `user_id` and returns the token for the cookie.
pub async fn create(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<String> {
    let token = new_token();
    sqlx::query("INSERT INTO sessions (token_hash, user_id, expires_at) VALUES ($1, $2, $3)")
        .bind(token_hash(&token))
        .bind(user_id)
        .bind(Utc::now() + Duration::days(SESSION_DAYS))
        .execute(conn)
        .await?;
    Ok(token)
}

#[derive(sqlx::FromRow)]
struct SessionUser {
    id: i64,
    email: String,
    display_name: String,
    role: String,
}

/// The user behind a session token, if the session exists and has not expired.
pub async fn user_for_token(conn: &mut PgConnection, token: &str) -> sqlx::Result<Option<User>> {
    let row = sqlx::query_as::<_, SessionUser>(
        "SELECT u.id, u.email, u.display_name, u.role
           FROM sessions s JOIN users u ON u.id = s.user_id
          WHERE s.token_hash = $1 AND s.expires_at > now()",
    )
    .bind(token_hash(token))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| User {
        id: r.id,
        email: r.email,
        display_name: r.display_name,
        role: Role::parse(&r.role).unwrap_or(Role::Learner),
    }))
}

pub async fn delete(conn: &mut PgConnection, token: &str) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
        .bind(token_hash(token))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn delete_expired(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sessions WHERE expires_at <= now()")
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), token_hash(&b));
    }
}
