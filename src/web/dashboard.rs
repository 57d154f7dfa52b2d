//! The learner's dashboard: completion per track, quiz score, day streak and recent activity.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use chrono::Utc;

use super::error::AppError;
use super::layout::Layout;
use super::lessons::{TrackCard, track_cards};
use super::viewer::Viewer;
use crate::app::AppState;
use crate::progress::{self, Activity};

pub fn router() -> Router<AppState> {
    Router::new().route("/dashboard", get(dashboard_show))
}

pub struct ActivityRow {
    pub activity: Activity,
    pub lesson_title: String,
}

impl ActivityRow {
    pub fn describe(&self) -> &'static str {
        match self.activity.kind.as_str() {
            "started" => "Started",
            "completed" => "Completed",
            "quiz_correct" => "Answered a quiz correctly in",
            "lab_solved" => "Solved the challenge of lab",
            _ => "Missed a quiz in",
        }
    }

    pub fn when(&self) -> String {
        self.activity.at.format("%Y-%m-%d %H:%M UTC").to_string()
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    layout: Layout,
    tracks: Vec<TrackCard>,
    completed: usize,
    total: usize,
    streak: u32,
    quizzes_answered: i64,
    quizzes_correct: i64,
    recent: Vec<ActivityRow>,
    /// (lab id, challenge title, when solved)
    labs_solved: Vec<(String, String, String)>,
}

async fn dashboard_show(
    State(state): State<AppState>,
    viewer: Viewer,
) -> Result<Html<String>, AppError> {
    let user = viewer.require_user("/dashboard")?.clone();
    let library = state.content.library();
    let mut conn = state.db.acquire().await?;
    let completed = progress::completed_slugs(&mut conn, user.id).await?;
    let tracks = track_cards(&library, &completed, viewer.is_staff());
    let days = progress::active_days(&mut conn, user.id).await?;
    let (quizzes_answered, quizzes_correct) = progress::quiz_score(&mut conn, user.id).await?;
    let labs_solved = progress::submissions::solved_labs(&mut conn, user.id)
        .await?
        .into_iter()
        .map(|(id, at)| {
            let title = state
                .lab(&id)
                .map(|l| l.title.clone())
                .unwrap_or_else(|| id.clone());
            (id, title, at.format("%Y-%m-%d").to_string())
        })
        .collect();
    let recent = progress::recent_activity(&mut conn, user.id, 12)
        .await?
        .into_iter()
        .map(|activity| ActivityRow {
            lesson_title: library
                .lesson(&activity.lesson_slug)
                .map(|l| l.meta.title.clone())
                .unwrap_or_else(|| activity.lesson_slug.clone()),
            activity,
        })
        .collect();
    let page = DashboardPage {
        completed: tracks.iter().map(|t| t.done).sum(),
        total: tracks.iter().map(|t| t.total).sum(),
        tracks,
        streak: progress::streak(&days, Utc::now().date_naive()),
        quizzes_answered,
        quizzes_correct,
        recent,
        labs_solved,
        layout: Layout::new(viewer, "Your progress"),
    };
    Ok(Html(page.render()?))
}
