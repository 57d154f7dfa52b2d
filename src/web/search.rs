//! Lesson search: a full page at `/search?q=`, and the results fragment alone for htmx's
//! search-as-you-type (same handler, `Vary: HX-Request`).

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use super::error::AppError;
use super::layout::Layout;
use super::vary_hx_request;
use super::viewer::Viewer;
use crate::app::AppState;
use crate::content::search::{self, SearchHit};

pub fn router() -> Router<AppState> {
    Router::new().route("/search", get(search_show))
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

struct ResultsView {
    query: String,
    hits: Vec<SearchHit>,
}

#[derive(Template)]
#[template(path = "partials/search_results.html")]
struct SearchResults {
    results: ResultsView,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    results: ResultsView,
}

async fn search_show(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let text: String = query.q.trim().chars().take(200).collect();
    let hits = search::search(&state.db, &text, viewer.is_staff(), 20).await?;
    let results = ResultsView { query: text, hits };
    let html = if viewer.htmx {
        SearchResults { results }.render()?
    } else {
        SearchPage {
            layout: Layout::new(viewer, "Search"),
            results,
        }
        .render()?
    };
    Ok(vary_hx_request(Html(html).into_response()))
}
