//! Wake-ups for WebSocket sessions, across instances.
//!
//! Storing a notification runs `pg_notify` in the same transaction, so every labdeck instance
//! `LISTEN`ing hears about it once it is committed, whichever instance's consumer stored it. The
//! hub forwards the learner's namespace on a broadcast channel; each WebSocket session of that
//! learner then reads its rows after its own cursor from PostgreSQL. A wake-up therefore carries
//! no data and losing one costs nothing but latency: when the listener's connection drops, the
//! hub sends `*` after reconnecting and every session re-reads.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;

use super::service::NotificationsLab;
use super::store::NEW_NOTIFICATION_CHANNEL;

/// The wake-up that means "everyone re-read".
pub const EVERYONE: &str = "*";

pub async fn listen(lab: Arc<NotificationsLab>) {
    loop {
        match PgListener::connect_with(&lab.db).await {
            Ok(mut listener) => {
                if let Err(err) = listener.listen(NEW_NOTIFICATION_CHANNEL).await {
                    tracing::warn!(error = %err, "LISTEN for notifications failed");
                } else {
                    let _ = lab.wakeups.send(EVERYONE.to_string());
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(notification)) => {
                                let _ = lab.wakeups.send(notification.payload().to_string());
                            }
                            // The connection dropped; sqlx reconnects on the next call.
                            Ok(None) => {
                                let _ = lab.wakeups.send(EVERYONE.to_string());
                            }
                            Err(err) => {
                                tracing::warn!(error = %err, "notification listener failed");
                                break;
                            }
                        }
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "connecting the notification listener"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
