//! Lab challenges in the browser: the challenge page (task, public tests, editor with the
//! learner's autosaved draft, attempt history), submissions (run public tests or submit), and
//! the live result stream (server-sent events) while a submission is graded.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;

use super::error::AppError;
use super::layout::Layout;
use super::vary_hx_request;
use super::viewer::Viewer;
use crate::app::AppState;
use crate::content::markdown;
use crate::grading::{Lab, Language, Mode, TestResult, jobs};
use crate::progress::submissions::{self, Submission};

/// Submissions a learner may make per minute.
pub const SUBMISSIONS_PER_MINUTE: i64 = 12;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/labs/{id}/challenge", get(challenge_show))
        .route("/labs/{id}/draft", post(draft_save))
        .route("/labs/{id}/submissions", post(submission_create))
        .route("/labs/{id}/submissions/{sid}", get(submission_show))
        .route(
            "/labs/{id}/submissions/{sid}/events",
            get(submission_events),
        )
}

fn lab_or_404(state: &AppState, id: &str) -> Result<Arc<Lab>, AppError> {
    state.lab(id).ok_or(AppError::NotFound)
}

/// JSON laid out for reading: anything that fits on a line stays on one line (so a trace shows
/// one hit per line), larger arrays and objects break over lines.
fn layout_json(value: &Value, indent: usize, out: &mut String) {
    let compact = value.to_string();
    if compact.len() + indent <= 72 {
        out.push_str(&compact);
        return;
    }
    let pad = "  ".repeat(indent + 1);
    match value {
        Value::Array(items) => {
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                layout_json(item, indent + 1, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(indent));
            out.push(']');
        }
        Value::Object(fields) => {
            out.push_str("{\n");
            for (i, (key, item)) in fields.iter().enumerate() {
                out.push_str(&pad);
                out.push_str(&Value::String(key.clone()).to_string());
                out.push_str(": ");
                layout_json(item, indent + 1, out);
                out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
            }
            out.push_str(&"  ".repeat(indent));
            out.push('}');
        }
        _ => out.push_str(&compact),
    }
}

fn pretty(value: &Value) -> String {
    let mut text = String::new();
    layout_json(value, 0, &mut text);
    if text.chars().count() > 4000 {
        format!("{}\n…", text.chars().take(4000).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn traces_are_laid_out_one_hit_per_line() {
        let hits: Vec<serde_json::Value> = (0..8)
            .map(|i| serde_json::json!(["user-1", 1000 + i]))
            .collect();
        let text =
            super::pretty(&serde_json::json!({ "limit": 2, "windowMs": 1000, "hits": hits }));
        assert!(text.contains("\n    [\"user-1\",1000],\n"), "{text}");
        assert!(text.starts_with("{\n  \"hits\": [\n"), "{text}");
        assert_eq!(super::pretty(&serde_json::json!([1, 2])), "[1,2]");
    }
}

/// One test result as the page shows it.
pub struct ResultView {
    pub r: TestResult,
}

impl ResultView {
    pub fn input(&self) -> Option<String> {
        self.r.input.as_ref().map(pretty)
    }
    pub fn expected(&self) -> Option<String> {
        self.r.expected.as_ref().map(pretty)
    }
    pub fn actual(&self) -> Option<String> {
        self.r.actual.as_ref().map(pretty)
    }
    pub fn verdict_label(&self) -> String {
        verdict_label(&self.r.verdict)
    }
    pub fn millis(&self) -> String {
        format!("{:.1} ms", self.r.duration_us as f64 / 1000.0)
    }
}

pub fn verdict_label(verdict: &str) -> String {
    match verdict {
        "accepted" => "Accepted",
        "wrong_answer" => "Wrong answer",
        "time_limit" => "Time limit exceeded",
        "memory_limit" => "Memory limit exceeded",
        "stack_overflow" => "Stack overflow",
        "output_limit" => "Output limit exceeded",
        "compile_error" => "Compile error",
        "runtime_error" => "Runtime error",
        "invalid_output" => "Invalid output",
        "source_too_large" => "Source too large",
        "pending" => "Grading…",
        "busy" => "Grader busy",
        _ => "Error",
    }
    .to_string()
}

#[derive(Template)]
#[template(path = "partials/test_result.html")]
struct TestResultPartial {
    view: ResultView,
}

pub struct SubmissionView {
    pub s: Submission,
    pub results: Vec<ResultView>,
}

impl SubmissionView {
    pub fn verdict_label(&self) -> String {
        verdict_label(&self.s.verdict)
    }
    /// The live stream, starting after the results already on the page.
    pub fn events_url(&self) -> String {
        format!(
            "/labs/{}/submissions/{}/events?from={}",
            self.s.lab_id,
            self.s.id,
            self.results.len()
        )
    }
    pub fn when(&self) -> String {
        self.s
            .created_at
            .format("%Y-%m-%d %H:%M:%S UTC")
            .to_string()
    }
}

#[derive(Template)]
#[template(path = "partials/submission.html")]
struct SubmissionPartial {
    sub: SubmissionView,
}

#[derive(Template)]
#[template(path = "labs/submission_summary.html")]
struct SummaryPartial {
    sub: SubmissionView,
}

pub struct PublicTestView {
    pub name: String,
    pub input: String,
    pub expected: String,
}

#[derive(Template)]
#[template(path = "labs/challenge.html")]
struct ChallengePage {
    layout: Layout,
    lab: Arc<Lab>,
    statement_html: String,
    public: Vec<PublicTestView>,
    source: String,
    history: Vec<SubmissionView>,
    solved: Option<DateTime<Utc>>,
    grading_available: bool,
    logged_in: bool,
}

async fn challenge_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let lab = lab_or_404(&state, &id)?;
    let (source, history, solved) = match &viewer.user {
        Some(user) => {
            let mut conn = state.db.acquire().await?;
            let draft = submissions::draft(&mut conn, user.id, &lab.id).await?;
            let history = submissions::history(&mut conn, user.id, &lab.id, 10).await?;
            let solved = submissions::solved_labs(&mut conn, user.id)
                .await?
                .into_iter()
                .find(|(lab_id, _)| *lab_id == lab.id)
                .map(|(_, at)| at);
            (
                draft.unwrap_or_else(|| lab.starter.clone()),
                history,
                solved,
            )
        }
        None => (lab.starter.clone(), Vec::new(), None),
    };
    let public = lab
        .public
        .iter()
        .map(|case| PublicTestView {
            name: case.name.clone(),
            input: pretty(&case.input),
            expected: pretty(&lab.challenge.expected(&case.input)),
        })
        .collect();
    let page = ChallengePage {
        statement_html: markdown::render(&lab.challenge_md).html_without_quizzes(),
        public,
        source,
        history: history
            .into_iter()
            .map(|s| SubmissionView {
                s,
                results: Vec::new(),
            })
            .collect(),
        solved,
        grading_available: state.graders.is_some(),
        logged_in: viewer.user.is_some(),
        layout: Layout::new(viewer, lab.title.clone()),
        lab,
    };
    Ok(Html(page.render()?))
}

/// Drafts and solutions share the lab's source limit.
fn check_source_size(lab: &Lab, source: &str) -> Result<(), AppError> {
    if source.len() > lab.limits.source_bytes {
        return Err(AppError::BadRequest(format!(
            "Solutions are limited to {} KiB.",
            lab.limits.source_bytes / 1024
        )));
    }
    Ok(())
}

#[derive(Deserialize)]
struct DraftForm {
    source: String,
}

async fn draft_save(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<DraftForm>,
) -> Result<StatusCode, AppError> {
    let lab = lab_or_404(&state, &id)?;
    let user = viewer.require_user(&format!("/labs/{id}/challenge"))?;
    check_source_size(&lab, &form.source)?;
    let mut conn = state.db.acquire().await?;
    submissions::save_draft(&mut conn, user.id, &lab.id, &form.source).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SubmissionForm {
    source: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

async fn submission_create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
    Form(form): Form<SubmissionForm>,
) -> Result<Response, AppError> {
    let lab = lab_or_404(&state, &id)?;
    let user = viewer
        .require_user(&format!("/labs/{id}/challenge"))?
        .clone();
    let graders = state.graders.clone().ok_or_else(|| {
        AppError::Unavailable(
            "Grading is unavailable on this server (the JavaScript engine is not installed)."
                .into(),
        )
    })?;
    let language = Language::parse(form.language.as_deref().unwrap_or("javascript"))
        .ok_or_else(|| AppError::BadRequest("Choose JavaScript or WebAssembly.".into()))?;
    let mode = match form.mode.as_deref() {
        Some("submit") => Mode::Submit,
        Some("run") | None => Mode::Run,
        Some(_) => {
            return Err(AppError::BadRequest(
                "Choose “Run public tests” or “Submit”.".into(),
            ));
        }
    };
    if form.source.trim().is_empty() {
        return Err(AppError::BadRequest(
            "Write a solution first: the editor is empty.".into(),
        ));
    }
    check_source_size(&lab, &form.source)?;
    // The checks and the insert happen under a per-learner lock, so parallel posts cannot
    // slip past the limits.
    let mut tx = state.db.begin().await?;
    submissions::lock_learner(&mut tx, user.id).await?;
    if submissions::has_pending(&mut tx, user.id).await? {
        return Err(AppError::TooManyRequests {
            message: "Your previous run is still being graded; wait for its results.".into(),
            retry_after_secs: 2,
        });
    }
    if submissions::recent_count(&mut tx, user.id).await? >= SUBMISSIONS_PER_MINUTE {
        return Err(AppError::TooManyRequests {
            message: format!(
                "You can run or submit {SUBMISSIONS_PER_MINUTE} times a minute; wait a little and try again."
            ),
            retry_after_secs: 20,
        });
    }
    submissions::save_draft(&mut tx, user.id, &lab.id, &form.source).await?;
    let submission_id =
        submissions::create(&mut tx, user.id, &lab.id, mode, language, &form.source).await?;
    tx.commit().await?;
    let mut conn = state.db.acquire().await?;
    if let Err(busy) = jobs::start(
        state.db.clone(),
        &graders,
        lab.clone(),
        submission_id,
        language,
        form.source,
        mode,
    ) {
        submissions::abandon(&mut conn, submission_id, "busy").await?;
        return Err(AppError::TooManyRequests {
            message: format!("The grader is busy. Retry in {} s.", busy.retry_after_secs),
            retry_after_secs: busy.retry_after_secs,
        });
    }
    metrics::counter!("lab_submissions_total", "lab" => lab.id.clone(), "mode" => mode.as_str())
        .increment(1);
    if !viewer.htmx {
        let target = format!("/labs/{}/submissions/{submission_id}", lab.id);
        return Ok(vary_hx_request(Redirect::to(&target).into_response()));
    }
    let submission = submissions::find(&mut conn, user.id, submission_id)
        .await?
        .ok_or(AppError::NotFound)?;
    let partial = SubmissionPartial {
        sub: SubmissionView {
            s: submission,
            results: Vec::new(),
        },
    };
    Ok(vary_hx_request(Html(partial.render()?).into_response()))
}

#[derive(Template)]
#[template(path = "labs/submission.html")]
struct SubmissionPage {
    layout: Layout,
    lab: Arc<Lab>,
    sub: SubmissionView,
}

async fn load_submission(
    state: &AppState,
    viewer: &Viewer,
    id: &str,
    sid: i64,
) -> Result<(Arc<Lab>, Submission), AppError> {
    let lab = lab_or_404(state, id)?;
    let user = viewer.require_user(&format!("/labs/{id}/challenge"))?;
    let mut conn = state.db.acquire().await?;
    let submission = submissions::find(&mut conn, user.id, sid)
        .await?
        .filter(|s| s.lab_id == lab.id)
        .ok_or(AppError::NotFound)?;
    Ok((lab, submission))
}

async fn submission_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, sid)): Path<(String, i64)>,
) -> Result<Html<String>, AppError> {
    let (lab, submission) = load_submission(&state, &viewer, &id, sid).await?;
    let mut conn = state.db.acquire().await?;
    let results = submissions::results(&mut conn, submission.id, 0).await?;
    let page = SubmissionPage {
        sub: SubmissionView {
            s: submission,
            results: results.into_iter().map(|r| ResultView { r }).collect(),
        },
        layout: Layout::new(viewer, format!("{} — attempt", lab.title)),
        lab,
    };
    Ok(Html(page.render()?))
}

/// Streams stored results as they appear: one `result` event per test (an HTML fragment), then
/// a `done` event with the summary. Reading from the database keeps this correct whichever
/// labdeck instance is grading, and after a reconnect.
#[derive(Deserialize)]
struct EventsQuery {
    /// The first test index the page does not have yet.
    #[serde(default)]
    from: i32,
}

async fn submission_events(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((id, sid)): Path<(String, i64)>,
    Query(query): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (_, submission) = load_submission(&state, &viewer, &id, sid).await?;
    let user_id = submission.user_id;
    let stream = futures::stream::unfold(
        (state, query.from.max(0), false, 0u32),
        move |(state, next, finished, idle)| async move {
            if finished {
                return None;
            }
            let mut conn = match state.db.acquire().await {
                Ok(conn) => conn,
                Err(_) => return Some((Vec::new(), (state, next, true, idle))),
            };
            // The row first: results stored before it says "finished" are then all visible.
            let current = submissions::find(&mut conn, user_id, sid)
                .await
                .ok()
                .flatten();
            let fresh = submissions::results(&mut conn, sid, next)
                .await
                .unwrap_or_default();
            drop(conn);
            let mut events = Vec::new();
            let mut next = next;
            for result in fresh {
                next = result.index as i32 + 1;
                let html = TestResultPartial {
                    view: ResultView { r: result },
                }
                .render()
                .unwrap_or_default();
                events.push(Event::default().event("result").data(html));
            }
            let done = current.as_ref().is_none_or(|s| s.finished());
            // Give up after two minutes without progress; the page shows the stored state.
            let idle = if events.is_empty() { idle + 1 } else { 0 };
            if done || idle > 1200 {
                if let Some(s) = current {
                    let html = SummaryPartial {
                        sub: SubmissionView {
                            s,
                            results: Vec::new(),
                        },
                    }
                    .render()
                    .unwrap_or_default();
                    events.push(Event::default().event("done").data(html));
                }
                return Some((events, (state, next, true, idle)));
            }
            if events.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some((events, (state, next, false, idle)))
        },
    )
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
