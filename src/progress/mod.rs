//! Learner progress in Postgres: lessons started and completed, quiz answers, the activity log
//! behind "recent activity" and the day streak, and the cohort statistics instructors see.
//!
//! Every function takes a `&mut PgConnection` so the caller decides the transaction. Handlers
//! call these; they never hold SQL themselves.

pub mod submissions;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LessonStatus {
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

async fn log_activity(
    conn: &mut PgConnection,
    user_id: i64,
    kind: &str,
    slug: &str,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO activity (user_id, kind, lesson_slug, detail) VALUES ($1, $2, $3, $4)",
    )
    .bind(user_id)
    .bind(kind)
    .bind(slug)
    .bind(detail)
    .execute(conn)
    .await?;
    Ok(())
}

/// Records that the learner opened a lesson (the first time only).
pub async fn mark_started(conn: &mut PgConnection, user_id: i64, slug: &str) -> sqlx::Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO lesson_progress (user_id, lesson_slug) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(slug)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 1 {
        log_activity(conn, user_id, "started", slug, "").await?;
    }
    Ok(())
}

/// Marks a lesson complete (or not). Completing twice keeps the first completion time.
pub async fn set_completed(
    conn: &mut PgConnection,
    user_id: i64,
    slug: &str,
    completed: bool,
) -> sqlx::Result<LessonStatus> {
    let before = lesson_status(&mut *conn, user_id, slug).await?;
    let row: (DateTime<Utc>, Option<DateTime<Utc>>) = sqlx::query_as(
        "INSERT INTO lesson_progress (user_id, lesson_slug, completed_at)
              VALUES ($1, $2, CASE WHEN $3 THEN now() END)
         ON CONFLICT (user_id, lesson_slug) DO UPDATE
              SET completed_at = CASE WHEN $3 THEN COALESCE(lesson_progress.completed_at, now()) END
         RETURNING started_at, completed_at",
    )
    .bind(user_id)
    .bind(slug)
    .bind(completed)
    .fetch_one(&mut *conn)
    .await?;
    let was_complete = before.is_some_and(|s| s.completed_at.is_some());
    if completed && !was_complete {
        log_activity(conn, user_id, "completed", slug, "").await?;
    }
    Ok(LessonStatus {
        started_at: row.0,
        completed_at: row.1,
    })
}

pub async fn lesson_status(
    conn: &mut PgConnection,
    user_id: i64,
    slug: &str,
) -> sqlx::Result<Option<LessonStatus>> {
    let row: Option<(DateTime<Utc>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT started_at, completed_at FROM lesson_progress WHERE user_id = $1 AND lesson_slug = $2",
    )
    .bind(user_id)
    .bind(slug)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(started_at, completed_at)| LessonStatus {
        started_at,
        completed_at,
    }))
}

pub async fn completed_slugs(
    conn: &mut PgConnection,
    user_id: i64,
) -> sqlx::Result<HashSet<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT lesson_slug FROM lesson_progress WHERE user_id = $1 AND completed_at IS NOT NULL",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(s,)| s).collect())
}

pub async fn record_quiz_answer(
    conn: &mut PgConnection,
    user_id: i64,
    slug: &str,
    quiz_id: &str,
    choice: usize,
    correct: bool,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO quiz_answers (user_id, lesson_slug, quiz_id, choice, correct) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(user_id)
    .bind(slug)
    .bind(quiz_id)
    .bind(i32::try_from(choice).unwrap_or(i32::MAX))
    .bind(correct)
    .execute(&mut *conn)
    .await?;
    let kind = if correct {
        "quiz_correct"
    } else {
        "quiz_wrong"
    };
    log_activity(conn, user_id, kind, slug, quiz_id).await
}

/// The learner's latest answer to each quiz of a lesson: quiz id → (choice, correct).
pub async fn latest_quiz_answers(
    conn: &mut PgConnection,
    user_id: i64,
    slug: &str,
) -> sqlx::Result<HashMap<String, (usize, bool)>> {
    let rows: Vec<(String, i32, bool)> = sqlx::query_as(
        "SELECT DISTINCT ON (quiz_id) quiz_id, choice, correct
           FROM quiz_answers WHERE user_id = $1 AND lesson_slug = $2
          ORDER BY quiz_id, answered_at DESC, id DESC",
    )
    .bind(user_id)
    .bind(slug)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(id, choice, correct)| (id, (usize::try_from(choice).unwrap_or(0), correct)))
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Activity {
    pub kind: String,
    pub lesson_slug: String,
    pub detail: String,
    pub at: DateTime<Utc>,
}

pub async fn recent_activity(
    conn: &mut PgConnection,
    user_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Activity>> {
    sqlx::query_as(
        "SELECT kind, lesson_slug, detail, at FROM activity WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Distinct UTC days with any activity, newest first.
pub async fn active_days(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<Vec<NaiveDate>> {
    let rows: Vec<(NaiveDate,)> = sqlx::query_as(
        "SELECT DISTINCT (at AT TIME ZONE 'UTC')::date AS day FROM activity WHERE user_id = $1 ORDER BY day DESC LIMIT 400",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|(d,)| d).collect())
}

/// Consecutive active days ending today, or yesterday (a streak is not lost before the day is
/// over). `days` must be distinct and newest first.
pub fn streak(days: &[NaiveDate], today: NaiveDate) -> u32 {
    let Some(&first) = days.first() else { return 0 };
    let gap = (today - first).num_days();
    if !(0..=1).contains(&gap) {
        return 0;
    }
    let mut count = 1;
    for pair in days.windows(2) {
        if (pair[0] - pair[1]).num_days() == 1 {
            count += 1;
        } else {
            break;
        }
    }
    count
}

/// (quizzes answered, answered correctly on the latest attempt)
pub async fn quiz_score(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE correct) FROM (
             SELECT DISTINCT ON (lesson_slug, quiz_id) correct FROM quiz_answers
              WHERE user_id = $1 ORDER BY lesson_slug, quiz_id, answered_at DESC, id DESC) latest",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct LessonStats {
    pub lesson_slug: String,
    pub started: i64,
    pub completed: i64,
    pub quiz_answers: i64,
    pub quiz_correct: i64,
}

/// Per-lesson counts over all learners, for the instructor page.
pub async fn lesson_stats(conn: &mut PgConnection) -> sqlx::Result<HashMap<String, LessonStats>> {
    let rows: Vec<LessonStats> = sqlx::query_as(
        "SELECT slugs.lesson_slug,
                COALESCE(p.started, 0) AS started, COALESCE(p.completed, 0) AS completed,
                COALESCE(q.answers, 0) AS quiz_answers, COALESCE(q.correct, 0) AS quiz_correct
           FROM (SELECT lesson_slug FROM lesson_progress UNION SELECT lesson_slug FROM quiz_answers) slugs
           LEFT JOIN (SELECT lesson_slug, count(*) AS started, count(completed_at) AS completed
                        FROM lesson_progress GROUP BY lesson_slug) p USING (lesson_slug)
           LEFT JOIN (SELECT lesson_slug, count(*) AS answers, count(*) FILTER (WHERE correct) AS correct
                        FROM quiz_answers GROUP BY lesson_slug) q USING (lesson_slug)",
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.lesson_slug.clone(), r))
        .collect())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ExportRow {
    pub email: String,
    pub display_name: String,
    pub lesson_slug: String,
    pub started_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub quiz_answers: i64,
    pub quiz_correct: i64,
}

/// One row per learner and lesson touched, for the CSV export.
pub async fn export_rows(conn: &mut PgConnection) -> sqlx::Result<Vec<ExportRow>> {
    sqlx::query_as(
        "SELECT u.email, u.display_name, p.lesson_slug, p.started_at, p.completed_at,
                COALESCE(q.answers, 0) AS quiz_answers, COALESCE(q.correct, 0) AS quiz_correct
           FROM lesson_progress p JOIN users u ON u.id = p.user_id
           LEFT JOIN (SELECT user_id, lesson_slug, count(*) AS answers, count(*) FILTER (WHERE correct) AS correct
                        FROM quiz_answers GROUP BY user_id, lesson_slug) q
                  ON q.user_id = p.user_id AND q.lesson_slug = p.lesson_slug
          ORDER BY u.email, p.started_at",
    )
    .fetch_all(conn)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, day).expect("date")
    }

    #[test]
    fn streak_counts_consecutive_days_up_to_today_or_yesterday() {
        assert_eq!(streak(&[], d(27)), 0);
        assert_eq!(streak(&[d(27), d(26), d(25), d(23)], d(27)), 3);
        assert_eq!(streak(&[d(26), d(25)], d(27)), 2);
        assert_eq!(streak(&[d(25), d(24)], d(27)), 0);
        assert_eq!(streak(&[d(27)], d(27)), 1);
    }
}
