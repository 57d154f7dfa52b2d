//! Instructor tools: per-lesson completion and quiz statistics, content problems found at load,
//! and a CSV export of learner progress.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::error::AppError;
use super::layout::Layout;
use super::viewer::Viewer;
use crate::app::AppState;
use crate::content::Diagnostic;
use crate::progress::{self, LessonStats};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/instructor", get(instructor_show))
        .route("/instructor/progress.csv", get(progress_csv))
}

pub struct LessonStatRow {
    pub slug: String,
    pub title: String,
    pub track: String,
    pub draft: bool,
    pub stats: LessonStats,
}

#[derive(Template)]
#[template(path = "instructor.html")]
struct InstructorPage {
    layout: Layout,
    rows: Vec<LessonStatRow>,
    diagnostics: Vec<Diagnostic>,
}

async fn instructor_show(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, AppError> {
    viewer.require_staff("/instructor")?;
    let library = state.content.library();
    let mut conn = state.db.acquire().await?;
    let mut stats = progress::lesson_stats(&mut conn).await?;
    let rows = library
        .tracks
        .iter()
        .flat_map(|track| library.track_lessons(track, true))
        .map(|lesson| LessonStatRow {
            stats: stats.remove(&lesson.meta.slug).unwrap_or_default(),
            slug: lesson.meta.slug.clone(),
            title: lesson.meta.title.clone(),
            track: lesson.meta.track.clone(),
            draft: lesson.meta.draft,
        })
        .collect();
    let page = InstructorPage {
        layout: Layout::new(viewer, "Instructor"),
        rows,
        diagnostics: library.diagnostics.clone(),
    };
    Ok(Html(page.render()?))
}

async fn progress_csv(State(state): State<AppState>, viewer: Viewer) -> Result<Response, AppError> {
    viewer.require_staff("/instructor")?;
    let mut conn = state.db.acquire().await?;
    let rows = progress::export_rows(&mut conn).await?;
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record([
            "email",
            "display_name",
            "lesson",
            "started_at",
            "completed_at",
            "quiz_answers",
            "quiz_correct",
        ])
        .map_err(anyhow::Error::from)?;
    for row in rows {
        writer
            .write_record([
                neutralise_formula(&row.email),
                neutralise_formula(&row.display_name),
                row.lesson_slug,
                row.started_at.to_rfc3339(),
                row.completed_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                row.quiz_answers.to_string(),
                row.quiz_correct.to_string(),
            ])
            .map_err(anyhow::Error::from)?;
    }
    let body = writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("csv: {e}"))?;
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"labdeck-progress.csv\""),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// Spreadsheet apps execute cells starting with `=`, `+`, `-` or `@`; learner-chosen names are
/// prefixed with a quote so opening the export cannot run a formula (CSV injection).
fn neutralise_formula(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formulas_are_neutralised() {
        assert_eq!(super::neutralise_formula("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(super::neutralise_formula("Ada"), "Ada");
    }
}
