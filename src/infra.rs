//! Connections to the services labdeck depends on.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use sqlx::PgPool;
use sqlx::migrate::MigrateDatabase;
use sqlx::postgres::PgPoolOptions;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates the database if needed, connects and applies pending migrations.
pub async fn connect_postgres(url: &str) -> anyhow::Result<PgPool> {
    if !sqlx::Postgres::database_exists(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach PostgreSQL at {}: {e}", redact(url)))?
    {
        sqlx::Postgres::create_database(url).await?;
        tracing::info!("created database");
    }
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect(url)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub async fn connect_redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Duration::from_secs(2))
        .set_response_timeout(Duration::from_secs(2))
        .set_number_of_retries(2);
    let manager = ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach Redis at {}: {e}", redact(url)))?;
    Ok(manager)
}

/// The URL with any password replaced, for error messages.
pub fn redact(url: &str) -> String {
    let redacted = url.split_once("://").and_then(|(scheme, rest)| {
        let (auth, host) = rest.split_once('@')?;
        let (user, _password) = auth.split_once(':')?;
        Some(format!("{scheme}://{user}:***@{host}"))
    });
    redacted.unwrap_or_else(|| url.to_string())
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
