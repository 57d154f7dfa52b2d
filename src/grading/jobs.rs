//! Background grading of a stored submission: the job runs on a sandbox thread and streams each
//! test result through a channel to a task that stores it; the page follows along by reading
//! the stored results (so any labdeck instance can serve the progress, not only the one
//! grading). The final verdict is stored last.

use std::sync::Arc;

use sqlx::PgPool;

use super::{Lab, Language, Mode, TestResult, grade};
use crate::progress::submissions;
use crate::sandbox::pool::{Busy, SandboxPool};

pub fn start(
    db: PgPool,
    pool: &SandboxPool,
    lab: Arc<Lab>,
    submission_id: i64,
    language: Language,
    source: String,
    mode: Mode,
) -> Result<(), Busy> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TestResult>();
    let done = pool.submit(move |sandbox| {
        grade(sandbox, &lab, language, &source, mode, |result| {
            let _ = tx.send(result.clone());
        })
    })?;
    tokio::spawn(async move {
        // Writes go through the pool one at a time: a queued job holds no connection.
        let store = async {
            while let Some(result) = rx.recv().await {
                let mut conn = db.acquire().await?;
                submissions::record_result(&mut conn, submission_id, &result).await?;
            }
            let report = done.await;
            let mut conn = db.acquire().await?;
            match report {
                Ok(report) => {
                    submissions::finish(&mut conn, submission_id, &report).await?;
                }
                Err(_) => submissions::abandon(&mut conn, submission_id, "internal_error").await?,
            }
            Ok::<(), sqlx::Error>(())
        };
        if let Err(err) = store.await {
            tracing::error!(error = %err, submission_id, "storing grading results failed");
            // Never leave the submission pending.
            if let Ok(mut conn) = db.acquire().await {
                let _ = submissions::abandon(&mut conn, submission_id, "internal_error").await;
            }
        }
    });
    Ok(())
}
