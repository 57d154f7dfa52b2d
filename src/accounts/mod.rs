//! Users: validated emails, password policy and argon2 hashing, roles, and the user table.
//!
//! Sign-up: [`Email::parse`] + [`check_password_strength`] → [`hash_password`] (argon2id, on a
//! blocking thread) → [`create_user`]. Log-in: [`find_by_email`] → [`verify_password`] →
//! [`session::create`]. Login attempts are throttled in Redis ([`throttle`]).

pub mod session;
pub mod throttle;

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use serde::Serialize;
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Role {
    Learner,
    Instructor,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Learner => "learner",
            Role::Instructor => "instructor",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "learner" => Some(Role::Learner),
            "instructor" => Some(Role::Instructor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    /// Instructors and admins see drafts and cohort statistics.
    pub fn is_staff(self) -> bool {
        self >= Role::Instructor
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: i64,
    email: String,
    display_name: String,
    role: String,
    password_hash: String,
}

impl UserRow {
    fn into_user(self) -> (User, String) {
        let user = User {
            id: self.id,
            email: self.email,
            display_name: self.display_name,
            // The CHECK constraint keeps the column to these three values.
            role: Role::parse(&self.role).unwrap_or(Role::Learner),
        };
        (user, self.password_hash)
    }
}

/// An email address that passed basic validation; kept as typed, compared case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Email, String> {
        let email = input.trim();
        let valid = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if valid {
            Ok(Email(email.to_string()))
        } else {
            Err("Enter an email address like name@example.com.".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub const MIN_PASSWORD_LEN: usize = 10;
const MAX_PASSWORD_LEN: usize = 128;
const COMMON_PASSWORDS: &[&str] = &[
    "password", "123456", "qwerty", "letmein", "welcome", "iloveyou", "admin", "monkey", "dragon",
    "football", "baseball", "sunshine", "princess", "trustno1", "abc123",
];

/// Rejects passwords that are short, repetitive or well known, with a message saying why.
pub fn check_password_strength(password: &str, email: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_PASSWORD_LEN {
        return Err(format!(
            "Use at least {MIN_PASSWORD_LEN} characters for your password."
        ));
    }
    if length > MAX_PASSWORD_LEN {
        return Err(format!(
            "Use at most {MAX_PASSWORD_LEN} characters for your password."
        ));
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 5 {
        return Err("That password is too repetitive; mix in more different characters.".into());
    }
    let lower = password.to_lowercase();
    // A well-known password padded with a few characters is still guessed quickly; a long
    // passphrase that merely contains a common word is fine.
    if COMMON_PASSWORDS
        .iter()
        .any(|common| lower.contains(common) && lower.len() - common.len() <= 6)
    {
        return Err(
            "That password contains a commonly used password; choose something less guessable."
                .into(),
        );
    }
    let local = email.split('@').next().unwrap_or("").to_lowercase();
    if local.len() >= 4 && lower.contains(&local) {
        return Err("Your password must not contain your email name.".into());
    }
    Ok(())
}

/// Hashes with argon2id and the crate's recommended parameters. CPU-heavy: call it from
/// `spawn_blocking` in async code.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A valid hash of a random password, verified against when an email is unknown so a failed
/// login takes as long whether or not the account exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&uuid::Uuid::new_v4().to_string()).unwrap_or_default())
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("An account with that email already exists.")]
    DuplicateEmail,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub async fn create_user(
    conn: &mut PgConnection,
    email: &Email,
    display_name: &str,
    password_hash: &str,
    role: Role,
) -> Result<User, CreateUserError> {
    let row = sqlx::query_as::<_, UserRow>(
        "INSERT INTO users (email, display_name, password_hash, role) VALUES ($1, $2, $3, $4)
         RETURNING id, email, display_name, role, password_hash",
    )
    .bind(email.as_str())
    .bind(display_name)
    .bind(password_hash)
    .bind(role.as_str())
    .fetch_one(conn)
    .await
    .map_err(|err| match &err {
        sqlx::Error::Database(db) if db.constraint() == Some("users_email_key") => {
            CreateUserError::DuplicateEmail
        }
        _ => CreateUserError::Database(err),
    })?;
    Ok(row.into_user().0)
}

/// The user with this email (case-insensitive) and their password hash.
pub async fn find_by_email(
    conn: &mut PgConnection,
    email: &str,
) -> sqlx::Result<Option<(User, String)>> {
    let row = sqlx::query_as::<_, UserRow>(
        "SELECT id, email, display_name, role, password_hash FROM users WHERE lower(email) = lower($1)",
    )
    .bind(email.trim())
    .fetch_optional(conn)
    .await?;
    Ok(row.map(UserRow::into_user))
}

pub async fn set_role(conn: &mut PgConnection, email: &str, role: Role) -> sqlx::Result<bool> {
    let result = sqlx::query("UPDATE users SET role = $2 WHERE lower(email) = lower($1)")
        .bind(email.trim())
        .bind(role.as_str())
        .execute(conn)
        .await?;
    Ok(result.rows_affected() == 1)
}

pub async fn list_users(conn: &mut PgConnection) -> sqlx::Result<Vec<User>> {
    let rows = sqlx::query_as::<_, UserRow>(
        "SELECT id, email, display_name, role, password_hash FROM users ORDER BY id",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.into_user().0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_validated() {
        assert!(Email::parse(" Ada@Example.com ").is_ok());
        for bad in [
            "", "ada", "ada@", "@x.io", "a b@x.io", "a@b", "a@@b.io", "a@.io",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn weak_passwords_are_rejected_with_a_reason() {
        assert!(
            check_password_strength("short", "a@b.io")
                .unwrap_err()
                .contains("at least 10")
        );
        assert!(
            check_password_strength("aaaaaaaaaaaa", "a@b.io")
                .unwrap_err()
                .contains("repetitive")
        );
        assert!(
            check_password_strength("MyPassword2024", "a@b.io")
                .unwrap_err()
                .contains("commonly used")
        );
        assert!(
            check_password_strength("grace-hopper-77", "grace@navy.mil")
                .unwrap_err()
                .contains("email")
        );
        assert!(check_password_strength("correct horse battery", "a@b.io").is_ok());
        assert!(check_password_strength("a long admin passphrase", "a@b.io").is_ok());
    }

    #[test]
    fn hashes_verify_only_the_right_password() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong horse battery", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn roles_round_trip_and_rank() {
        for role in [Role::Learner, Role::Instructor, Role::Admin] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert!(!Role::Learner.is_staff());
        assert!(Role::Instructor.is_staff() && Role::Admin.is_staff());
    }
}
