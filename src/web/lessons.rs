//! Reading: the home page, track pages and lesson pages, plus the two things a learner does on a
//! lesson — answering a quiz and marking the lesson complete. Both actions work as plain form
//! posts and, with htmx, swap only their own fragment.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;

use super::error::AppError;
use super::layout::Layout;
use super::vary_hx_request;
use super::viewer::Viewer;
use crate::app::AppState;
use crate::content::markdown::{Quiz, Segment, TocEntry};
use crate::content::{Lesson, Library, Track};
use crate::labs::{self, LabInfo};
use crate::progress::{self, LessonStatus};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/tracks/{id}", get(track_show))
        .route("/lessons/{slug}", get(lesson_show))
        .route("/lessons/{slug}/complete", post(lesson_complete))
        .route("/lessons/{slug}/quiz/{quiz_id}", post(quiz_answer))
}

pub struct TrackCard {
    pub id: String,
    pub title: String,
    pub summary: String,
    pub total: usize,
    pub done: usize,
}

impl TrackCard {
    pub fn percent(&self) -> usize {
        (self.done * 100).checked_div(self.total).unwrap_or(0)
    }
}

/// Completion of every track for a learner (or zero everywhere for a visitor).
pub fn track_cards(
    library: &Library,
    completed: &HashSet<String>,
    show_drafts: bool,
) -> Vec<TrackCard> {
    library
        .tracks
        .iter()
        .map(|track| {
            let lessons = library.track_lessons(track, show_drafts);
            TrackCard {
                id: track.id.clone(),
                title: track.title.clone(),
                summary: track.summary.clone(),
                total: lessons.len(),
                done: lessons
                    .iter()
                    .filter(|l| completed.contains(&l.meta.slug))
                    .count(),
            }
        })
        .collect()
}

async fn completed_for(state: &AppState, viewer: &Viewer) -> Result<HashSet<String>, AppError> {
    match &viewer.user {
        Some(user) => {
            let mut conn = state.db.acquire().await?;
            Ok(progress::completed_slugs(&mut conn, user.id).await?)
        }
        None => Ok(HashSet::new()),
    }
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    layout: Layout,
    tracks: Vec<TrackCard>,
    lesson_count: usize,
}

async fn home(State(state): State<AppState>, viewer: Viewer) -> Result<Html<String>, AppError> {
    let library = state.content.library();
    let completed = completed_for(&state, &viewer).await?;
    let tracks = track_cards(&library, &completed, viewer.is_staff());
    let page = HomePage {
        lesson_count: tracks.iter().map(|t| t.total).sum(),
        tracks,
        layout: Layout::new(viewer, "Backend interview prep, hands on"),
    };
    Ok(Html(page.render()?))
}

pub struct LessonRow {
    pub lesson: Arc<Lesson>,
    pub done: bool,
}

#[derive(Template)]
#[template(path = "track.html")]
struct TrackPage {
    layout: Layout,
    track: Track,
    lessons: Vec<LessonRow>,
    done: usize,
}

async fn track_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Html<String>, AppError> {
    let library = state.content.library();
    let track = library.track(&id).ok_or(AppError::NotFound)?.clone();
    let completed = completed_for(&state, &viewer).await?;
    let lessons: Vec<LessonRow> = library
        .track_lessons(&track, viewer.is_staff())
        .into_iter()
        .map(|lesson| LessonRow {
            done: completed.contains(&lesson.meta.slug),
            lesson,
        })
        .collect();
    let page = TrackPage {
        done: lessons.iter().filter(|l| l.done).count(),
        layout: Layout::new(viewer, track.title.clone()),
        track,
        lessons,
    };
    Ok(Html(page.render()?))
}

/// One quiz as a learner sees it, with their latest answer if any.
pub struct QuizView {
    pub slug: String,
    pub quiz: Quiz,
    pub chosen: Option<usize>,
    pub csrf: String,
    pub logged_in: bool,
}

impl QuizView {
    pub fn answered(&self) -> bool {
        self.chosen.is_some()
    }
    pub fn correct(&self) -> bool {
        self.chosen == Some(self.quiz.answer)
    }
    pub fn is_chosen(&self, index: &usize) -> bool {
        self.chosen == Some(*index)
    }
    pub fn options(&self) -> impl Iterator<Item = (usize, &String)> {
        self.quiz.options_html.iter().enumerate()
    }
}

pub enum LessonPart {
    Html(String),
    Quiz(QuizView),
}

pub struct CompleteView {
    pub slug: String,
    pub completed: bool,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "lesson.html")]
struct LessonPage {
    layout: Layout,
    lesson: Arc<Lesson>,
    track_title: String,
    parts: Vec<LessonPart>,
    toc: Vec<TocEntry>,
    prev: Option<Arc<Lesson>>,
    next: Option<Arc<Lesson>>,
    status: Option<LessonStatus>,
    complete: Option<CompleteView>,
    lab: Option<&'static LabInfo>,
}

fn visible_lesson(library: &Library, slug: &str, viewer: &Viewer) -> Result<Arc<Lesson>, AppError> {
    let lesson = library.lesson(slug).ok_or(AppError::NotFound)?;
    if lesson.meta.draft && !viewer.is_staff() {
        return Err(AppError::NotFound);
    }
    Ok(lesson.clone())
}

async fn render_lesson(
    state: &AppState,
    viewer: Viewer,
    slug: &str,
    answered_now: Option<(String, usize)>,
) -> Result<Html<String>, AppError> {
    let library = state.content.library();
    let lesson = visible_lesson(&library, slug, &viewer)?;
    let (mut answers, status) = match &viewer.user {
        Some(user) => {
            let mut conn = state.db.acquire().await?;
            // Reads first: only the first visit pays for a write.
            let mut status = progress::lesson_status(&mut conn, user.id, slug).await?;
            if status.is_none() {
                progress::mark_started(&mut conn, user.id, slug).await?;
                status = progress::lesson_status(&mut conn, user.id, slug).await?;
            }
            let answers = progress::latest_quiz_answers(&mut conn, user.id, slug).await?;
            (answers, status)
        }
        None => (HashMap::new(), None),
    };
    if let Some((quiz_id, choice)) = answered_now {
        answers.insert(quiz_id, (choice, false));
    }
    let rendered = &lesson.rendered;
    let parts = rendered
        .segments
        .iter()
        .filter_map(|segment| match segment {
            Segment::Html(html) => Some(LessonPart::Html(html.clone())),
            Segment::Quiz(i) => rendered.quizzes.get(*i).map(|quiz| {
                LessonPart::Quiz(QuizView {
                    slug: slug.to_string(),
                    chosen: answers.get(&quiz.id).map(|(choice, _)| *choice),
                    quiz: quiz.clone(),
                    csrf: viewer.csrf_token.clone(),
                    logged_in: viewer.user.is_some(),
                })
            }),
        })
        .collect();
    let (prev, next) = library.neighbours(slug, viewer.is_staff());
    let track_title = library
        .track(&lesson.meta.track)
        .map(|t| t.title.clone())
        .unwrap_or_default();
    let complete = viewer.user.as_ref().map(|_| CompleteView {
        slug: slug.to_string(),
        completed: status.is_some_and(|s| s.completed_at.is_some()),
        csrf: viewer.csrf_token.clone(),
    });
    let mut layout = Layout::new(viewer, lesson.meta.title.clone());
    layout.diagrams = rendered.has_diagrams;
    let page = LessonPage {
        layout,
        track_title,
        parts,
        toc: rendered.toc.clone(),
        prev,
        next,
        status,
        complete,
        lab: lesson.meta.lab.as_deref().and_then(labs::find),
        lesson,
    };
    Ok(Html(page.render()?))
}

async fn lesson_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Html<String>, AppError> {
    render_lesson(&state, viewer, &slug, None).await
}

#[derive(Deserialize)]
struct CompleteForm {
    completed: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/complete.html")]
struct CompletePartial {
    c: CompleteView,
}

async fn lesson_complete(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    Form(form): Form<CompleteForm>,
) -> Result<Response, AppError> {
    let user = viewer.require_user(&format!("/lessons/{slug}"))?;
    visible_lesson(&state.content.library(), &slug, &viewer)?;
    let completed = form.completed.as_deref() != Some("false");
    let mut conn = state.db.acquire().await?;
    let status = progress::set_completed(&mut conn, user.id, &slug, completed).await?;
    if !viewer.htmx {
        return Ok(vary_hx_request(
            Redirect::to(&format!("/lessons/{slug}")).into_response(),
        ));
    }
    let partial = CompletePartial {
        c: CompleteView {
            slug,
            completed: status.completed_at.is_some(),
            csrf: viewer.csrf_token.clone(),
        },
    };
    Ok(vary_hx_request(Html(partial.render()?).into_response()))
}

#[derive(Deserialize)]
struct QuizForm {
    choice: Option<String>,
}

#[derive(Template)]
#[template(path = "partials/quiz.html")]
struct QuizPartial {
    q: QuizView,
}

async fn quiz_answer(
    State(state): State<AppState>,
    viewer: Viewer,
    Path((slug, quiz_id)): Path<(String, String)>,
    Form(form): Form<QuizForm>,
) -> Result<Response, AppError> {
    let library = state.content.library();
    let lesson = visible_lesson(&library, &slug, &viewer)?;
    let quiz = lesson
        .rendered
        .quizzes
        .iter()
        .find(|q| q.id == quiz_id)
        .ok_or(AppError::NotFound)?
        .clone();
    let choice = form
        .choice
        .as_deref()
        .ok_or_else(|| AppError::BadRequest("Choose an answer first.".to_string()))?
        .parse::<usize>()
        .ok()
        .filter(|c| *c < quiz.options_html.len())
        .ok_or_else(|| AppError::BadRequest("That is not one of the options.".to_string()))?;
    if let Some(user) = &viewer.user {
        let mut conn = state.db.acquire().await?;
        progress::mark_started(&mut conn, user.id, &slug).await?;
        progress::record_quiz_answer(
            &mut conn,
            user.id,
            &slug,
            &quiz_id,
            choice,
            choice == quiz.answer,
        )
        .await?;
    }
    if viewer.htmx {
        let partial = QuizPartial {
            q: QuizView {
                slug,
                quiz,
                chosen: Some(choice),
                csrf: viewer.csrf_token.clone(),
                logged_in: viewer.user.is_some(),
            },
        };
        return Ok(vary_hx_request(Html(partial.render()?).into_response()));
    }
    if viewer.user.is_some() {
        let target = format!("/lessons/{slug}#quiz-{quiz_id}");
        return Ok(vary_hx_request(Redirect::to(&target).into_response()));
    }
    // A visitor without JavaScript: nothing is stored, so show the answer on the page directly.
    let page = render_lesson(&state, viewer, &slug, Some((quiz_id, choice))).await?;
    Ok(vary_hx_request(page.into_response()))
}
