//! Lab submissions in Postgres: the submission row, its per-test results as they stream in,
//! the final verdict, autosaved drafts and which labs a learner has solved.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::grading::{Language, Mode, Report, TestResult, Visibility};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Submission {
    pub id: i64,
    pub user_id: i64,
    pub lab_id: String,
    pub mode: String,
    pub language: String,
    pub source: String,
    pub verdict: String,
    pub passed: i32,
    pub total: i32,
    pub score: i32,
    pub fuel_used: i64,
    pub duration_ms: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Submission {
    pub fn finished(&self) -> bool {
        self.finished_at.is_some()
    }
}

/// PostgreSQL text cannot hold NUL; solutions and their output may contain it.
pub fn storable(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn storable_json(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::String(s) => serde_json::Value::String(storable(s).into_owned()),
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.iter().map(storable_json).collect())
        }
        serde_json::Value::Object(fields) => serde_json::Value::Object(
            fields
                .iter()
                .map(|(k, v)| (storable(k).into_owned(), storable_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Whether the learner already has a submission being graded (one at a time per learner).
/// Rows pending for longer than any grading can take (left by a crashed process) do not count.
pub async fn has_pending(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<bool> {
    let (pending,): (bool,) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM submissions WHERE user_id = $1 AND finished_at IS NULL
                          AND created_at > now() - interval '10 minutes')",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(pending)
}

/// Serialises a learner's submission checks and insert (transaction-scoped advisory lock).
pub async fn lock_learner(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(7262, $1::int)")
        .bind(user_id as i32)
        .execute(conn)
        .await?;
    Ok(())
}

/// Submissions left pending by a stopped process are marked as failed on start-up.
pub async fn abandon_stale(conn: &mut PgConnection) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "UPDATE submissions SET verdict = 'internal_error', finished_at = now()
          WHERE finished_at IS NULL AND created_at < now() - interval '10 minutes'",
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn create(
    conn: &mut PgConnection,
    user_id: i64,
    lab_id: &str,
    mode: Mode,
    language: Language,
    source: &str,
) -> sqlx::Result<i64> {
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO submissions (user_id, lab_id, mode, language, source) VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(user_id)
    .bind(lab_id)
    .bind(mode.as_str())
    .bind(language.as_str())
    .bind(storable(source))
    .fetch_one(conn)
    .await?;
    Ok(id)
}

/// How many submissions this learner made in the last minute (the per-learner rate limit).
pub async fn recent_count(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<i64> {
    let (count,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM submissions WHERE user_id = $1 AND created_at > now() - interval '1 minute'",
    )
    .bind(user_id)
    .fetch_one(conn)
    .await?;
    Ok(count)
}

pub async fn record_result(
    conn: &mut PgConnection,
    submission_id: i64,
    result: &TestResult,
) -> sqlx::Result<()> {
    let detail = (result.input.is_some() || result.expected.is_some() || result.actual.is_some()).then(|| {
        storable_json(&serde_json::json!({ "input": result.input, "expected": result.expected, "actual": result.actual }))
    });
    sqlx::query(
        "INSERT INTO submission_results (submission_id, idx, name, visibility, passed, verdict, message, detail, console, fuel_used, duration_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
    )
    .bind(submission_id)
    .bind(result.index as i32)
    .bind(storable(&result.name))
    .bind(result.visibility.as_str())
    .bind(result.passed)
    .bind(&result.verdict)
    .bind(storable(&result.message))
    .bind(detail)
    .bind(storable(&result.console))
    .bind(result.fuel_used as i64)
    .bind(result.duration_us as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Stores the final verdict; a full pass of a `submit` solves the lab (once).
pub async fn finish(
    conn: &mut PgConnection,
    submission_id: i64,
    report: &Report,
) -> sqlx::Result<bool> {
    let (user_id, lab_id, mode): (i64, String, String) = sqlx::query_as(
        "UPDATE submissions SET verdict = $2, passed = $3, total = $4, score = $5, fuel_used = $6,
                duration_ms = $7, finished_at = now()
          WHERE id = $1 RETURNING user_id, lab_id, mode",
    )
    .bind(submission_id)
    .bind(&report.verdict)
    .bind(report.passed as i32)
    .bind(report.total as i32)
    .bind(report.score() as i32)
    .bind(report.fuel_used as i64)
    .bind(report.duration.as_millis() as i32)
    .fetch_one(&mut *conn)
    .await?;
    if mode != "submit" || !report.accepted() {
        return Ok(false);
    }
    let solved = sqlx::query(
        "INSERT INTO lab_solves (user_id, lab_id, submission_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(user_id)
    .bind(&lab_id)
    .bind(submission_id)
    .execute(&mut *conn)
    .await?
    .rows_affected()
        == 1;
    if solved {
        sqlx::query("INSERT INTO activity (user_id, kind, lesson_slug, detail) VALUES ($1, 'lab_solved', $2, '')")
            .bind(user_id)
            .bind(&lab_id)
            .execute(conn)
            .await?;
    }
    Ok(solved)
}

/// Marks a submission that could not be graded (busy grader, internal error).
pub async fn abandon(
    conn: &mut PgConnection,
    submission_id: i64,
    verdict: &str,
) -> sqlx::Result<()> {
    sqlx::query("UPDATE submissions SET verdict = $2, finished_at = now() WHERE id = $1")
        .bind(submission_id)
        .bind(verdict)
        .execute(conn)
        .await?;
    Ok(())
}

/// A learner's own submission (None for anybody else's).
pub async fn find(
    conn: &mut PgConnection,
    user_id: i64,
    submission_id: i64,
) -> sqlx::Result<Option<Submission>> {
    sqlx::query_as("SELECT * FROM submissions WHERE id = $1 AND user_id = $2")
        .bind(submission_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

#[derive(sqlx::FromRow)]
struct ResultRow {
    idx: i32,
    name: String,
    visibility: String,
    passed: bool,
    verdict: String,
    message: String,
    detail: Option<serde_json::Value>,
    console: String,
    fuel_used: i64,
    duration_us: i64,
}

/// Results stored so far, from test `from` on.
pub async fn results(
    conn: &mut PgConnection,
    submission_id: i64,
    from: i32,
) -> sqlx::Result<Vec<TestResult>> {
    let rows: Vec<ResultRow> = sqlx::query_as(
        "SELECT idx, name, visibility, passed, verdict, message, detail, console, fuel_used, duration_us
           FROM submission_results WHERE submission_id = $1 AND idx >= $2 ORDER BY idx",
    )
    .bind(submission_id)
    .bind(from)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let detail = r.detail.unwrap_or(serde_json::Value::Null);
            let field = |name: &str| detail.get(name).filter(|v| !v.is_null()).cloned();
            TestResult {
                index: r.idx as usize,
                name: r.name,
                visibility: match r.visibility.as_str() {
                    "public" => Visibility::Public,
                    "hidden" => Visibility::Hidden,
                    _ => Visibility::Random,
                },
                passed: r.passed,
                verdict: r.verdict,
                message: r.message,
                input: field("input"),
                expected: field("expected"),
                actual: field("actual"),
                console: r.console,
                fuel_used: r.fuel_used as u64,
                duration_us: r.duration_us as u64,
            }
        })
        .collect())
}

pub async fn history(
    conn: &mut PgConnection,
    user_id: i64,
    lab_id: &str,
    limit: i64,
) -> sqlx::Result<Vec<Submission>> {
    sqlx::query_as("SELECT * FROM submissions WHERE user_id = $1 AND lab_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3")
        .bind(user_id)
        .bind(lab_id)
        .bind(limit)
        .fetch_all(conn)
        .await
}

pub async fn save_draft(
    conn: &mut PgConnection,
    user_id: i64,
    lab_id: &str,
    source: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO lab_drafts (user_id, lab_id, source) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, lab_id) DO UPDATE SET source = EXCLUDED.source, updated_at = now()",
    )
    .bind(user_id)
    .bind(lab_id)
    .bind(storable(source))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn draft(
    conn: &mut PgConnection,
    user_id: i64,
    lab_id: &str,
) -> sqlx::Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT source FROM lab_drafts WHERE user_id = $1 AND lab_id = $2")
            .bind(user_id)
            .bind(lab_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(s,)| s))
}

/// Labs this learner solved, with when.
pub async fn solved_labs(
    conn: &mut PgConnection,
    user_id: i64,
) -> sqlx::Result<Vec<(String, DateTime<Utc>)>> {
    sqlx::query_as("SELECT lab_id, solved_at FROM lab_solves WHERE user_id = $1 ORDER BY solved_at")
        .bind(user_id)
        .fetch_all(conn)
        .await
}
