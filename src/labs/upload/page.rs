//! The lab page, `/labs/upload`, and its one plain form besides the upload form (delete).
//!
//! The page lists the learner's files with their CSV summaries and signed download links,
//! the limits with their error codes, and curl examples with the learner's lab key. Uploading
//! works without JavaScript (a multipart form posting to the API, which redirects back here
//! with `?uploaded=<ids>`); `static/js/upload.js` adds the generator, progress bar, resumable
//! uploads, the buffering comparison and the live memory gauge.

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::api::{API_PREFIX, LAB_PATH, browser_namespace, set_lab_cookie, signed_link};
use super::limits::{Code, human_bytes};
use super::storage::StoredFile;
use super::tus::TUS_PATH;
use crate::app::AppState;
use crate::web::error::AppError;
use crate::web::layout::Layout;
use crate::web::viewer::Viewer;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(LAB_PATH, get(lab_show))
        .route("/labs/upload/files/{id}/delete", post(file_delete))
}

pub struct StatView {
    pub name: String,
    pub filled: u64,
    pub numeric: String,
    pub longest: u64,
}

pub struct FileView {
    pub id: String,
    pub name: String,
    pub size: String,
    pub bytes: u64,
    pub via: String,
    pub rows: u64,
    pub columns: String,
    pub invalid_rows: u64,
    pub first_invalid: String,
    pub sha256: String,
    pub created: String,
    pub download: String,
    pub highlighted: bool,
    pub stats: Vec<StatView>,
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.4}")
    }
}

impl FileView {
    fn new(file: &StoredFile, download: String, highlighted: bool) -> FileView {
        let summary = &file.summary;
        FileView {
            id: file.id.clone(),
            name: file.name.clone(),
            size: human_bytes(file.size),
            bytes: file.size,
            via: file.field.clone(),
            rows: summary.rows,
            columns: summary.columns.join(", "),
            invalid_rows: summary.invalid_rows,
            first_invalid: summary
                .first_invalid_lines
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            sha256: file.sha256.clone(),
            created: file.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            download,
            highlighted,
            stats: summary
                .stats
                .iter()
                .map(|s| StatView {
                    name: s.name.clone(),
                    filled: s.filled,
                    numeric: s
                        .numeric
                        .as_ref()
                        .map(|n| {
                            format!(
                                "sum {} · min {} · max {}",
                                number(n.sum),
                                number(n.min),
                                number(n.max)
                            )
                        })
                        .unwrap_or_else(|| "—".to_string()),
                    longest: s.longest,
                })
                .collect(),
        }
    }
}

pub struct LimitRow {
    pub code: &'static str,
    pub status: u16,
    pub limit: String,
    pub when: &'static str,
}

pub struct LessonLink {
    pub slug: String,
    pub title: String,
}

#[derive(Template)]
#[template(path = "labs/upload.html")]
struct LabPage {
    layout: Layout,
    files: Vec<FileView>,
    highlighted: Vec<FileView>,
    limits: Vec<LimitRow>,
    lab_key: String,
    base_url: String,
    api_prefix: &'static str,
    tus_path: &'static str,
    visitor: bool,
    max_file: String,
    max_file_bytes: u64,
    buffered_max: String,
    per_learner: u32,
    lessons: Vec<LessonLink>,
    deleted: bool,
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    uploaded: Option<String>,
    deleted: Option<String>,
}

fn limit_rows(state: &AppState) -> Vec<LimitRow> {
    let l = &state.uploads.limits;
    let row = |code: Code, limit: String, when: &'static str| LimitRow {
        code: code.id(),
        status: code.status().as_u16(),
        limit,
        when,
    };
    vec![
        row(
            Code::FileSize,
            human_bytes(l.max_file_bytes),
            "one file is larger (checked against Content-Length first, then while streaming)",
        ),
        row(
            Code::RequestSize,
            human_bytes(l.max_request_bytes),
            "the whole request body is larger (Content-Length over it: refused before reading)",
        ),
        row(
            Code::FileCount,
            l.max_files.to_string(),
            "more files in one request",
        ),
        row(
            Code::FieldCount,
            l.max_fields.to_string(),
            "more non-file fields",
        ),
        row(
            Code::FieldValue,
            human_bytes(l.max_field_bytes),
            "a field value is longer",
        ),
        row(Code::FieldKey, "100 bytes".into(), "a field name is longer"),
        row(
            Code::PartCount,
            l.max_parts.to_string(),
            "more parts (files + fields)",
        ),
        row(
            Code::UnexpectedFile,
            "file, files".into(),
            "a file arrives under another field name",
        ),
        row(
            Code::FileType,
            ".csv .tsv .txt, UTF-8".into(),
            "wrong extension or declared type, or the first KiB has NUL bytes or is not UTF-8",
        ),
        row(
            Code::MediaType,
            "multipart/form-data, text/csv".into(),
            "the request's Content-Type is neither",
        ),
        row(
            Code::TooManyUploads,
            format!("{} per learner, {} per server", l.per_learner, l.global),
            "too many uploads in flight (with Retry-After)",
        ),
    ]
}

async fn lab_show(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Query(query): Query<PageQuery>,
) -> Result<Response, AppError> {
    let (ns, new_cookie) =
        browser_namespace(&state, &headers, viewer.user.as_ref().map(|u| u.id)).await;
    let files = state
        .uploads
        .storage
        .list(&ns)
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!(err.to_string())))?;
    let wanted: Vec<&str> = query
        .uploaded
        .as_deref()
        .map(|ids| ids.split(',').collect())
        .unwrap_or_default();
    let views: Vec<FileView> = files
        .iter()
        .map(|file| {
            let (link, _) = signed_link(&state, &ns, &file.id);
            FileView::new(file, link, wanted.contains(&file.id.as_str()))
        })
        .collect();
    let highlighted = files
        .iter()
        .filter(|f| wanted.contains(&f.id.as_str()))
        .map(|file| {
            let (link, _) = signed_link(&state, &ns, &file.id);
            FileView::new(file, link, true)
        })
        .collect();
    let library = state.content.library();
    let mut lessons: Vec<_> = library
        .lessons()
        .filter(|l| l.meta.lab.as_deref() == Some("upload") && !l.meta.draft)
        .cloned()
        .collect();
    lessons.sort_by_key(|l| (l.meta.track.clone(), l.meta.order));
    let limits = &state.uploads.limits;
    let page = LabPage {
        files: views,
        highlighted,
        limits: limit_rows(&state),
        lab_key: state.lab_keys.issue(&ns),
        base_url: state.config.public_url.clone(),
        api_prefix: API_PREFIX,
        tus_path: TUS_PATH,
        visitor: viewer.user.is_none(),
        max_file: human_bytes(limits.max_file_bytes),
        max_file_bytes: limits.max_file_bytes,
        buffered_max: human_bytes(limits.buffered_max_bytes),
        per_learner: limits.per_learner,
        lessons: lessons
            .iter()
            .map(|l| LessonLink {
                slug: l.meta.slug.clone(),
                title: l.meta.title.clone(),
            })
            .collect(),
        deleted: query.deleted.is_some(),
        layout: Layout::new(viewer, "Streaming upload lab"),
    };
    let mut response = Html(page.render()?).into_response();
    if let Some(token) = new_cookie {
        set_lab_cookie(&state, &mut response, token);
    }
    Ok(response)
}

/// The no-JavaScript delete button (the viewer middleware has checked its CSRF token).
async fn file_delete(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let (ns, _) = browser_namespace(&state, &headers, viewer.user.as_ref().map(|u| u.id)).await;
    let deleted = state
        .uploads
        .storage
        .delete(&ns, &id)
        .await
        .map_err(|err| AppError::Internal(anyhow::anyhow!(err.to_string())))?;
    if !deleted {
        return Err(AppError::NotFound);
    }
    Ok(Redirect::to(&format!("{LAB_PATH}?deleted=1#files")).into_response())
}
