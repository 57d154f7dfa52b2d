//! Login throttling in Redis, shared by every labdeck process: failed attempts are counted per
//! account and per client IP in fixed 15-minute windows (`INCR` + `EXPIRE NX` in one pipeline).
//! A successful login clears the account counter. If Redis is unreachable the check lets the
//! attempt through and logs it: an outage of the throttle must not lock everybody out.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::ConnectionManager;

/// How long a throttle check may wait for Redis before giving up (and letting the login through).
const REDIS_DEADLINE: Duration = Duration::from_millis(500);

async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> redis::RedisResult<T> {
    match tokio::time::timeout(REDIS_DEADLINE, call).await {
        Ok(result) => result,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "redis did not answer in time",
        ))),
    }
}

pub const WINDOW_SECS: i64 = 15 * 60;
pub const MAX_FAILURES_PER_ACCOUNT: i64 = 5;
pub const MAX_FAILURES_PER_IP: i64 = 30;

#[derive(Clone)]
pub struct LoginThrottle {
    redis: ConnectionManager,
    prefix: String,
}

impl LoginThrottle {
    pub fn new(redis: ConnectionManager, prefix: &str) -> Self {
        LoginThrottle {
            redis,
            prefix: format!("{prefix}login-failures:"),
        }
    }

    fn keys(&self, email: &str, ip: &str) -> (String, String) {
        (
            format!("{}account:{}", self.prefix, email.trim().to_lowercase()),
            format!("{}ip:{ip}", self.prefix),
        )
    }

    /// `Some(seconds)` to wait when this account or IP has failed too often.
    pub async fn blocked_for(&self, email: &str, ip: &str) -> Option<i64> {
        let (account, ip_key) = self.keys(email, ip);
        let mut redis = self.redis.clone();
        let counts: redis::RedisResult<(Option<i64>, Option<i64>, i64, i64)> = bounded(
            redis::pipe()
                .get(&account)
                .get(&ip_key)
                .ttl(&account)
                .ttl(&ip_key)
                .query_async(&mut redis),
        )
        .await;
        match counts {
            Ok((a, i, ttl_a, ttl_i)) => {
                if a.unwrap_or(0) >= MAX_FAILURES_PER_ACCOUNT {
                    Some(ttl_a.max(1))
                } else if i.unwrap_or(0) >= MAX_FAILURES_PER_IP {
                    Some(ttl_i.max(1))
                } else {
                    None
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "login throttle unavailable; allowing attempt");
                None
            }
        }
    }

    pub async fn record_failure(&self, email: &str, ip: &str) {
        let (account, ip_key) = self.keys(email, ip);
        let mut redis = self.redis.clone();
        let result: redis::RedisResult<()> = bounded(
            redis::pipe()
                .incr(&account, 1)
                .cmd("EXPIRE")
                .arg(&account)
                .arg(WINDOW_SECS)
                .arg("NX")
                .incr(&ip_key, 1)
                .cmd("EXPIRE")
                .arg(&ip_key)
                .arg(WINDOW_SECS)
                .arg("NX")
                .query_async(&mut redis),
        )
        .await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not record failed login");
        }
    }

    pub async fn record_success(&self, email: &str, ip: &str) {
        let (account, _) = self.keys(email, ip);
        let mut redis = self.redis.clone();
        let result: redis::RedisResult<()> = bounded(redis.del(&account)).await;
        if let Err(err) = result {
            tracing::warn!(error = %err, "could not clear login failures");
        }
    }
}
