//! The upload API: multipart and raw CSV uploads, the buffering comparison endpoint, the file
//! list, live progress, presigned uploads and signed downloads.
//!
//! These routes sit outside the site's 30-second handler timeout (a 100 MB upload on a slow
//! link takes longer) and outside the page middleware, which would otherwise read form bodies
//! for its CSRF check. [`identify_uploader`] takes its place: the learner is the `X-Lab-Key`
//! holder (curl, scripts, the tus client), else the logged-in user, else the anonymous lab
//! cookie; a browser's unsafe request must carry its CSRF token in `X-CSRF-Token`, or — for the
//! plain multipart form without JavaScript — as the `csrf_token` field before any file.
//!
//! Upload flow: check Content-Type and Content-Length (too large → 413 before one body byte is
//! read; hyper only sends `100 Continue` once the body is polled), take an [`UploadSlot`]
//! (503 when the learner or server is at the cap), then pull the body frame by frame, and for
//! each file part, chunk by chunk into a [`FileSink`]. The first limit crossed ends the request:
//! the answer goes out with `Connection: close`, the unread rest of the body is never read,
//! and every part file of the request is deleted.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use axum_extra::extract::cookie::CookieJar;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::{self, BodyHandle, SharedBody};
use super::limits::{Code, UploadError, human_bytes};
use super::presign::{self, DownloadQuery, UploadGrant, UploadQuery};
use super::storage::{
    StoredFile, allowed_content_type, allowed_extension, clean_name, is_id, new_id,
};
use super::tus;
use crate::accounts::session;
use crate::app::AppState;
use crate::labs::learner::{LAB_KEY_HEADER, user_namespace, visitor_namespace};
use crate::web::viewer::{build_cookie, cookie_names, csrf_token};

pub const API_PREFIX: &str = "/labs/upload/api";
pub const LAB_PATH: &str = "/labs/upload";
/// Form fields that take files; a file under any other name is `LIMIT_UNEXPECTED_FILE`.
pub const FILE_FIELDS: [&str; 2] = ["file", "files"];
const MAX_FIELD_NAME: usize = 100;
const LAB_COOKIE_DAYS: i64 = 30;

pub fn router(state: &AppState) -> Router<AppState> {
    let learner_routes = Router::new()
        .route(
            "/labs/upload/api/files",
            get(files_list).post(files_create).put(files_create),
        )
        .route(
            "/labs/upload/api/files/{id}",
            get(file_show).delete(file_delete),
        )
        .route("/labs/upload/api/files/{id}/link", get(file_link))
        .route("/labs/upload/api/buffered", post(buffered_create))
        .route("/labs/upload/api/status", get(status_show))
        .route("/labs/upload/api/events", get(status_events))
        .route("/labs/upload/api/presign", post(presign_create))
        .route("/labs/upload/tus", post(tus::create))
        .route(
            "/labs/upload/tus/{id}",
            axum::routing::head(tus::head)
                .patch(tus::patch)
                .delete(tus::terminate),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            identify_uploader,
        ));
    // Signed URLs carry their own authorisation and are used without cookies.
    Router::new()
        .merge(learner_routes)
        .route("/labs/upload/tus", axum::routing::options(tus::options))
        .route(
            "/labs/upload/tus/{id}",
            axum::routing::options(tus::options),
        )
        .route("/labs/upload/direct/{ns}/{id}", put(direct_upload))
        .route("/labs/upload/download/{ns}/{id}", get(signed_download))
}

/// Who is uploading, and whether their request already proved it is not cross-site.
#[derive(Debug, Clone)]
pub struct Uploader {
    pub namespace: String,
    /// An `X-Lab-Key` or a valid `X-CSRF-Token` came with the request.
    pub csrf_ok: bool,
    /// The token a `csrf_token` form field must match (browsers only).
    pub expected_csrf: Option<String>,
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Uploader {
    type Rejection = UploadError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Uploader>()
            .cloned()
            .ok_or_else(|| UploadError::storage("uploader middleware not installed").body_read())
    }
}

fn is_unsafe(method: &axum::http::Method) -> bool {
    !matches!(
        *method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    )
}

fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

fn is_multipart(headers: &HeaderMap) -> bool {
    content_type(headers)
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
}

/// The learner behind a browser request (account, else lab cookie), and a new lab cookie to set
/// when the visitor had none. Shared with the page.
pub async fn browser_namespace(
    state: &AppState,
    headers: &HeaderMap,
    user_id: Option<i64>,
) -> (String, Option<String>) {
    if let Some(id) = user_id {
        return (user_namespace(id), None);
    }
    let names = cookie_names(state.config.secure_cookies());
    let jar = CookieJar::from_headers(headers);
    if let Some(session_cookie) = jar.get(names.session)
        && let Ok(mut conn) = state.db.acquire().await
        && let Ok(Some(user)) = session::user_for_token(&mut conn, session_cookie.value()).await
    {
        return (user_namespace(user.id), None);
    }
    match jar.get(names.lab) {
        Some(cookie) if cookie.value().len() == 43 => (visitor_namespace(cookie.value()), None),
        _ => {
            let token = session::new_token();
            (visitor_namespace(&token), Some(token))
        }
    }
}

pub fn set_lab_cookie(state: &AppState, response: &mut Response, token: String) {
    let secure = state.config.secure_cookies();
    let mut cookie = build_cookie(cookie_names(secure).lab, token, secure);
    cookie.set_max_age(time::Duration::days(LAB_COOKIE_DAYS));
    if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

async fn identify_uploader(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let uploader = if let Some(value) = headers.get(LAB_KEY_HEADER) {
        match value
            .to_str()
            .ok()
            .and_then(|key| state.lab_keys.verify(key))
        {
            Some(namespace) => Uploader {
                namespace,
                csrf_ok: true,
                expected_csrf: None,
            },
            None => {
                return UploadError::new(
                    Code::InvalidLabKey,
                    "That X-Lab-Key is not valid here. Copy yours from the lab page.",
                )
                .body_read()
                .into_response();
            }
        }
    } else {
        let (namespace, new_cookie) = browser_namespace(&state, headers, None).await;
        let names = cookie_names(state.config.secure_cookies());
        let expected = CookieJar::from_headers(headers)
            .get(names.csrf)
            .map(|seed| csrf_token(state.config.secret.expose(), seed.value()));
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        let csrf_ok = matches!((&expected, sent), (Some(expected), Some(sent))
            if bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sent.as_bytes())));
        if is_unsafe(request.method()) && !csrf_ok && !is_multipart(headers) {
            return UploadError::new(
                Code::Csrf,
                "This request carries no valid CSRF token. Browsers: reload the lab page; scripts: send your X-Lab-Key header.",
            )
            .into_response();
        }
        let uploader = Uploader {
            namespace,
            csrf_ok,
            expected_csrf: expected,
        };
        if let Some(token) = new_cookie {
            request.extensions_mut().insert(uploader);
            let mut response = next.run(request).await;
            set_lab_cookie(&state, &mut response, token);
            return response;
        }
        uploader
    };
    request.extensions_mut().insert(uploader);
    next.run(request).await
}

// ---------------------------------------------------------------------------------------------
// Uploads

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Browsers posting the plain form get the page back; everyone else gets JSON.
fn wants_html(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.contains("text/html") && !accept.contains("application/json")
}

fn created(headers: &HeaderMap, files: Vec<StoredFile>, fields: Map<String, Value>) -> Response {
    if wants_html(headers) {
        let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
        return Redirect::to(&format!("{LAB_PATH}?uploaded={}#files", ids.join(",")))
            .into_response();
    }
    let mut response = (
        StatusCode::CREATED,
        Json(json!({ "files": files, "fields": fields })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn request_too_large(limit: u64, declared: Option<u64>) -> UploadError {
    let said = declared
        .map(|d| format!(" (this one declares {})", human_bytes(d)))
        .unwrap_or_default();
    UploadError::new(
        Code::RequestSize,
        format!(
            "An upload request may carry at most {}{said}; nothing was read or kept.",
            human_bytes(limit)
        ),
    )
    .with("limit", limit)
}

fn media_type_error(got: &str) -> UploadError {
    UploadError::new(
        Code::MediaType,
        format!(
            "Send multipart/form-data (a form with a `file` field) or a raw CSV body with Content-Type: text/csv; got {:?}.",
            if got.is_empty() { "nothing" } else { got }
        ),
    )
}

/// `POST`/`PUT /labs/upload/api/files`: multipart or raw CSV.
async fn files_create(
    State(state): State<AppState>,
    uploader: Uploader,
    Query(query): Query<RawQuery>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (body, handle) = body::shared(body);
    let ct = content_type(&parts.headers);
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let result = if essence == "multipart/form-data" {
        multipart_upload(&state, &uploader, &parts.headers, body).await
    } else if essence == "text/csv" || essence == "text/plain" {
        let name = query.name.as_deref().unwrap_or("upload.csv");
        raw_upload(
            &state,
            &uploader.namespace,
            &parts.headers,
            body,
            name,
            "raw",
            None,
        )
        .await
        .map(|file| (vec![file], Map::new()))
    } else {
        Err(media_type_error(&ct))
    };
    match result {
        Ok((files, fields)) => created(&parts.headers, files, fields),
        Err(err) => refuse(err, handle, &parts.headers),
    }
}

/// Answers a refused upload and lets the unread rest of the body drain briefly (see `body`).
pub fn refuse(err: UploadError, handle: BodyHandle, headers: &HeaderMap) -> Response {
    if err.body_unread {
        handle.linger(body::expects_continue(headers));
    }
    err.into_response()
}

#[derive(Debug, Deserialize)]
struct RawQuery {
    name: Option<String>,
}

fn body_error(err: impl std::fmt::Display) -> UploadError {
    UploadError::new(
        Code::Aborted,
        format!("The upload stopped before it was complete ({err}); nothing was kept."),
    )
}

/// A raw body is exactly one file.
async fn raw_upload(
    state: &AppState,
    ns: &str,
    headers: &HeaderMap,
    body: SharedBody,
    name: &str,
    field: &'static str,
    id: Option<String>,
) -> Result<StoredFile, UploadError> {
    let lab = &state.uploads;
    let limit = lab.limits.max_file_bytes;
    let name = clean_name(name);
    let declared = content_length(headers);
    if let Some(declared) = declared.filter(|d| *d > limit) {
        return Err(UploadError::new(
            Code::FileSize,
            format!(
                "{name} is {} but a file may be at most {}; nothing was read or kept.",
                human_bytes(declared),
                human_bytes(limit)
            ),
        )
        .with("limit", limit)
        .with("file", name));
    }
    if !allowed_extension(&name) {
        return Err(type_error(&name));
    }
    let slot = lab.acquire(ns, field, &name, declared)?;
    let mut sink = lab
        .storage
        .sink(ns, id, &name, field, limit, slot.progress.clone())
        .await?;
    let mut stream = body;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        sink.push(&chunk).await?;
    }
    let stored = sink.finish().await.map_err(UploadError::body_read)?;
    drop(slot);
    tracing::info!(namespace = ns, id = %stored.id, bytes = stored.size, rows = stored.summary.rows, via = field, "upload stored");
    Ok(stored)
}

fn type_error(name: &str) -> UploadError {
    UploadError::new(
        Code::FileType,
        format!("{name}: only .csv, .tsv and .txt files are accepted here (text, UTF-8)."),
    )
    .with("file", name.to_string())
}

fn multer_error(err: multer::Error, limit: u64) -> UploadError {
    match err {
        multer::Error::StreamSizeExceeded { .. } => request_too_large(limit, None),
        multer::Error::StreamReadFailed(err) => body_error(err),
        other => UploadError::new(
            Code::Malformed,
            format!("The multipart body could not be read: {other}."),
        ),
    }
}

type Uploaded = (Vec<StoredFile>, Map<String, Value>);

async fn multipart_upload(
    state: &AppState,
    uploader: &Uploader,
    headers: &HeaderMap,
    body: SharedBody,
) -> Result<Uploaded, UploadError> {
    let lab = &state.uploads;
    let limits = &lab.limits;
    let declared = content_length(headers);
    if let Some(declared) = declared.filter(|d| *d > limits.max_request_bytes) {
        return Err(request_too_large(limits.max_request_bytes, Some(declared)));
    }
    let boundary = multer::parse_boundary(content_type(headers)).map_err(|err| {
        UploadError::new(
            Code::Malformed,
            format!("The Content-Type has no usable multipart boundary: {err}."),
        )
    })?;
    let slot = lab.acquire(&uploader.namespace, "multipart", "multipart form", declared)?;
    let constraints = multer::Constraints::new()
        .size_limit(multer::SizeLimit::new().whole_stream(limits.max_request_bytes));
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut csrf_ok = uploader.csrf_ok;
    let (mut parts, mut files, mut fields) = (0u32, 0u32, 0u32);
    let mut values = Map::new();
    // Files finished earlier in this request: deleted again if a later part fails, so a refused
    // request leaves nothing behind (multer does the same).
    let mut stored: Vec<StoredFile> = Vec::new();
    let result: Result<(), UploadError> = async {
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|e| multer_error(e, limits.max_request_bytes))?
        {
            parts += 1;
            if parts > limits.max_parts {
                return Err(UploadError::new(
                    Code::PartCount,
                    format!("A request may have at most {} parts (files and fields together).", limits.max_parts),
                )
                .with("limit", limits.max_parts));
            }
            let name = field.name().unwrap_or("").to_string();
            if name.len() > MAX_FIELD_NAME {
                return Err(UploadError::new(
                    Code::FieldKey,
                    format!("Field names may be at most {MAX_FIELD_NAME} bytes long."),
                )
                .with("limit", MAX_FIELD_NAME));
            }
            let Some(file_name) = field.file_name().map(str::to_string) else {
                fields += 1;
                if fields > limits.max_fields {
                    return Err(UploadError::new(
                        Code::FieldCount,
                        format!("A request may have at most {} non-file fields.", limits.max_fields),
                    )
                    .with("limit", limits.max_fields)
                    .with("field", name));
                }
                let mut value = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| multer_error(e, limits.max_request_bytes))?
                {
                    if (value.len() + chunk.len()) as u64 > limits.max_field_bytes {
                        return Err(UploadError::new(
                            Code::FieldValue,
                            format!(
                                "The field {name:?} is longer than {}, the limit for a form field.",
                                human_bytes(limits.max_field_bytes)
                            ),
                        )
                        .with("limit", limits.max_field_bytes)
                        .with("field", name));
                    }
                    value.extend_from_slice(&chunk);
                }
                if name == "csrf_token" {
                    let given = String::from_utf8_lossy(&value);
                    csrf_ok |= uploader.expected_csrf.as_deref().is_some_and(|expected| {
                        bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given.as_bytes()))
                    });
                    continue;
                }
                values.insert(name, Value::String(String::from_utf8_lossy(&value).into_owned()));
                continue;
            };
            if !csrf_ok {
                return Err(UploadError::new(
                    Code::Csrf,
                    "This form has expired or did not come from labdeck (the csrf_token field must come before the files). Reload the page and try again.",
                ));
            }
            if !FILE_FIELDS.contains(&name.as_str()) {
                return Err(UploadError::new(
                    Code::UnexpectedFile,
                    format!("A file arrived in the field {name:?}; files go in \"file\" or \"files\"."),
                )
                .with("field", name));
            }
            files += 1;
            if files > limits.max_files {
                return Err(UploadError::new(
                    Code::FileCount,
                    format!("A request may carry at most {} files.", limits.max_files),
                )
                .with("limit", limits.max_files));
            }
            let file_name = clean_name(&file_name);
            let declared_type = field.content_type().map(|m| m.essence_str().to_string());
            if !allowed_extension(&file_name)
                || declared_type.as_deref().is_some_and(|t| !allowed_content_type(t))
            {
                return Err(type_error(&file_name).with("field", name));
            }
            let mut sink = lab
                .storage
                .sink(
                    &uploader.namespace,
                    None,
                    &file_name,
                    &name,
                    limits.max_file_bytes,
                    slot.progress.clone(),
                )
                .await?;
            while let Some(chunk) = field
                .chunk()
                .await
                .map_err(|e| multer_error(e, limits.max_request_bytes))?
            {
                sink.push(&chunk).await?;
            }
            stored.push(sink.finish().await?);
        }
        Ok(())
    }
    .await;
    if let Err(err) = result {
        for file in &stored {
            let _ = lab.storage.delete(&uploader.namespace, &file.id).await;
        }
        return Err(err);
    }
    if stored.is_empty() {
        if !csrf_ok {
            return Err(
                UploadError::new(Code::Csrf, "This form carries no valid csrf_token.").body_read(),
            );
        }
        return Err(UploadError::new(
            Code::Malformed,
            "The form carried no file: send it in a field named \"file\" with a filename.",
        )
        .body_read());
    }
    tracing::info!(namespace = %uploader.namespace, files = stored.len(), "multipart upload stored");
    Ok((stored, values))
}

/// `POST /labs/upload/api/buffered`: the anti-pattern, on purpose. It reads the whole body into
/// memory (like `express.raw()` or multer's memoryStorage) before looking at it, so it has to be
/// capped low; the page compares its memory curve with the streaming endpoint's.
async fn buffered_create(
    State(state): State<AppState>,
    uploader: Uploader,
    Query(query): Query<RawQuery>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (body, handle) = body::shared(body);
    match buffered_upload(
        &state,
        &uploader.namespace,
        &parts.headers,
        body,
        query.name,
    )
    .await
    {
        Ok(file) => created(&parts.headers, vec![file], Map::new()),
        Err(err) => refuse(err, handle, &parts.headers),
    }
}

async fn buffered_upload(
    state: &AppState,
    ns: &str,
    headers: &HeaderMap,
    body: SharedBody,
    name: Option<String>,
) -> Result<StoredFile, UploadError> {
    let lab = &state.uploads;
    let cap = lab.limits.buffered_max_bytes;
    let ct = content_type(headers);
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != "text/csv" && essence != "text/plain" {
        return Err(media_type_error(&ct));
    }
    let too_big = || {
        UploadError::new(
            Code::RequestSize,
            format!(
                "The buffering endpoint holds the whole body in memory, so it takes at most {}. Use the streaming endpoint for anything bigger.",
                human_bytes(cap)
            ),
        )
        .with("limit", cap)
    };
    let declared = content_length(headers);
    if declared.is_some_and(|d| d > cap) {
        return Err(too_big());
    }
    let name = clean_name(name.as_deref().unwrap_or("buffered.csv"));
    if !allowed_extension(&name) {
        return Err(type_error(&name));
    }
    let slot = lab.acquire(ns, "buffered", &name, declared)?;
    let mut held = lab.buffered();
    let mut whole = Vec::new();
    let mut stream = body;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(body_error)?;
        if (whole.len() + chunk.len()) as u64 > cap {
            return Err(too_big());
        }
        whole.extend_from_slice(&chunk);
        held.add(chunk.len() as u64);
        // Bytes received, no rows yet: nothing is parsed until the body is complete.
        slot.progress.advance(chunk.len() as u64, 0);
    }
    let mut sink = lab
        .storage
        .sink(ns, None, &name, "buffered", cap, slot.progress.clone())
        .await?;
    sink.push(&whole).await.map_err(UploadError::body_read)?;
    let stored = sink.finish().await.map_err(UploadError::body_read)?;
    drop(held);
    Ok(stored)
}

// ---------------------------------------------------------------------------------------------
// Files

fn json_no_store(value: Value) -> Response {
    let mut response = Json(value).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn not_found() -> UploadError {
    UploadError::new(Code::NotFound, "You have no file with that id.").body_read()
}

async fn files_list(State(state): State<AppState>, uploader: Uploader) -> Response {
    match state.uploads.storage.list(&uploader.namespace).await {
        Ok(files) => json_no_store(json!({ "files": files })),
        Err(err) => err.body_read().into_response(),
    }
}

async fn file_show(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
) -> Response {
    match state.uploads.storage.get(&uploader.namespace, &id).await {
        Ok(Some(file)) => json_no_store(json!(file)),
        Ok(None) => not_found().into_response(),
        Err(err) => err.body_read().into_response(),
    }
}

async fn file_delete(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
) -> Response {
    match state.uploads.storage.delete(&uploader.namespace, &id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found().into_response(),
        Err(err) => err.body_read().into_response(),
    }
}

/// The URL the client reached us at: the configured public URL's scheme with the request's
/// `Host` (so URLs handed out work when the server was bound to port 0 or behind a proxy that
/// keeps Host), else the configured public URL.
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    let public = &state.config.public_url;
    let scheme = if public.starts_with("https://") {
        "https"
    } else {
        "http"
    };
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) if !host.is_empty() && !host.contains(['/', ' ', '@']) => {
            format!("{scheme}://{host}")
        }
        _ => public.clone(),
    }
}

pub fn now_secs() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A signed download link for one of the learner's files, valid for the URL TTL.
pub fn signed_link(state: &AppState, ns: &str, id: &str) -> (String, i64) {
    let expires = now_secs() + state.uploads.limits.url_ttl_secs as i64;
    (
        presign::download_url(&state.uploads.url_key, ns, id, expires),
        expires,
    )
}

async fn file_link(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match state.uploads.storage.get(&uploader.namespace, &id).await {
        Ok(Some(file)) => {
            let (path, expires) = signed_link(&state, &uploader.namespace, &file.id);
            json_no_store(json!({
                "url": format!("{}{path}", base_url(&state, &headers)),
                "expires": expires,
            }))
        }
        Ok(None) => not_found().into_response(),
        Err(err) => err.body_read().into_response(),
    }
}

async fn signed_download(
    State(state): State<AppState>,
    Path((ns, id)): Path<(String, String)>,
    Query(query): Query<DownloadQuery>,
) -> Response {
    let lab = &state.uploads;
    if let Err(err) = presign::verify_download(&lab.url_key, &ns, &id, &query, now_secs()) {
        return err.into_response();
    }
    // The signature names the owner; the file must still be theirs.
    let file = match lab.storage.get(&ns, &id).await {
        Ok(Some(file)) => file,
        Ok(None) => return not_found().into_response(),
        Err(err) => return err.body_read().into_response(),
    };
    let path = match lab.storage.data_path(&ns, &id) {
        Ok(path) => path,
        Err(err) => return err.body_read().into_response(),
    };
    let handle = match tokio::fs::File::open(&path).await {
        Ok(handle) => handle,
        Err(_) => return not_found().into_response(),
    };
    let body = Body::from_stream(tokio_util_stream(handle));
    let disposition = format!(
        "attachment; filename=\"{}\"",
        file.name.replace(['"', '\\'], "_")
    );
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// A file as a stream of 64 KiB chunks (constant memory, like the uploads).
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl Stream<Item = std::io::Result<axum::body::Bytes>> + Send {
    futures::stream::unfold(file, |mut file| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(axum::body::Bytes::from(buf)), file))
            }
            Err(err) => Some((Err(err), file)),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Progress

async fn status_show(State(state): State<AppState>, uploader: Uploader) -> Response {
    json_no_store(json!(state.uploads.snapshot(&uploader.namespace)))
}

/// Server-sent events: the gauge and the learner's uploads, four times a second.
async fn status_events(
    State(state): State<AppState>,
    uploader: Uploader,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let ticks = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
        Duration::from_millis(250),
    ));
    let stream = ticks.map(move |_| {
        let snapshot = state.uploads.snapshot(&uploader.namespace);
        Ok(Event::default()
            .event("status")
            .data(serde_json::to_string(&snapshot).unwrap_or_default()))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

// ---------------------------------------------------------------------------------------------
// Presigned uploads

#[derive(Debug, Deserialize)]
struct PresignRequest {
    name: Option<String>,
    content_type: Option<String>,
    /// The most bytes the client will send (capped at the per-file limit).
    max_bytes: Option<u64>,
}

async fn presign_create(
    State(state): State<AppState>,
    uploader: Uploader,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lab = &state.uploads;
    let request: PresignRequest = if body.is_empty() {
        PresignRequest {
            name: None,
            content_type: None,
            max_bytes: None,
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(err) => {
                return UploadError::new(
                    Code::BadRequest,
                    format!("Send JSON like {{\"name\": \"data.csv\", \"content_type\": \"text/csv\", \"max_bytes\": 1000000}}: {err}."),
                )
                .body_read()
                .into_response();
            }
        }
    };
    let name = clean_name(request.name.as_deref().unwrap_or("upload.csv"));
    if !allowed_extension(&name) {
        return type_error(&name).body_read().into_response();
    }
    let content_type = request.content_type.unwrap_or_else(|| "text/csv".into());
    if !matches!(content_type.as_str(), "text/csv" | "text/plain") {
        return media_type_error(&content_type).body_read().into_response();
    }
    let max_bytes = request
        .max_bytes
        .unwrap_or(lab.limits.max_file_bytes)
        .min(lab.limits.max_file_bytes);
    let grant = UploadGrant {
        key: format!("{}/{}", uploader.namespace, new_id()),
        name,
        content_type,
        min_bytes: 1,
        max_bytes,
        expires: now_secs() + lab.limits.url_ttl_secs as i64,
    };
    let url = format!("{}{}", base_url(&state, &headers), grant.url(&lab.url_key));
    let mut response = (
        StatusCode::CREATED,
        Json(json!({
            "method": "PUT",
            "url": url,
            "headers": { "Content-Type": grant.content_type },
            "expires": grant.expires,
            "max_bytes": grant.max_bytes,
            "min_bytes": grant.min_bytes,
            "key": grant.key,
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `PUT /labs/upload/direct/<namespace>/<id>?…&sig=…`: a presigned upload, no cookies needed.
async fn direct_upload(
    State(state): State<AppState>,
    Path((ns, id)): Path<(String, String)>,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (body, handle) = body::shared(body);
    match direct_upload_inner(&state, &ns, &id, &query, &parts.headers, body).await {
        Ok(file) => created(&parts.headers, vec![file], Map::new()),
        Err(err) => refuse(err, handle, &parts.headers),
    }
}

async fn direct_upload_inner(
    state: &AppState,
    ns: &str,
    id: &str,
    query: &UploadQuery,
    headers: &HeaderMap,
    body: SharedBody,
) -> Result<StoredFile, UploadError> {
    let lab = &state.uploads;
    if !is_id(id) {
        return Err(UploadError::new(
            Code::BadSignature,
            "This upload URL is not valid.",
        ));
    }
    let grant = UploadGrant::verify(&lab.url_key, ns, id, query, now_secs())?;
    let ct = content_type(headers);
    let essence = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence != grant.content_type {
        return Err(UploadError::new(
            Code::MediaType,
            format!(
                "This URL was signed for Content-Type: {}; the request says {:?}.",
                grant.content_type, ct
            ),
        ));
    }
    let declared = content_length(headers);
    match declared {
        Some(len) if len > grant.max_bytes => {
            return Err(UploadError::new(
                Code::FileSize,
                format!(
                    "This URL allows at most {}; the request declares {}. Nothing was read.",
                    human_bytes(grant.max_bytes),
                    human_bytes(len)
                ),
            )
            .with("limit", grant.max_bytes));
        }
        Some(len) if len < grant.min_bytes => {
            return Err(UploadError::new(
                Code::BadRequest,
                format!("This URL needs at least {} bytes.", grant.min_bytes),
            ));
        }
        _ => {}
    }
    // Single use: a URL whose file already exists cannot overwrite it.
    if lab.storage.get(ns, id).await?.is_some() {
        return Err(UploadError::new(
            Code::BadSignature,
            "This upload URL has already been used. Ask for a new one.",
        ));
    }
    let slot = lab.acquire(ns, "presigned", &grant.name, declared)?;
    let mut sink = lab
        .storage
        .sink(
            ns,
            Some(id.to_string()),
            &grant.name,
            "presigned",
            grant.max_bytes,
            slot.progress.clone(),
        )
        .await?;
    let mut stream = body;
    while let Some(chunk) = stream.next().await {
        sink.push(&chunk.map_err(body_error)?).await?;
    }
    if sink.size < grant.min_bytes {
        return Err(UploadError::new(
            Code::BadRequest,
            format!("This URL needs at least {} bytes.", grant.min_bytes),
        )
        .body_read());
    }
    sink.finish().await.map_err(UploadError::body_read)
}
