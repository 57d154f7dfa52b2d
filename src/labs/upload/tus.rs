//! Resumable uploads: the tus 1.0 core protocol with the creation, termination, expiration and
//! checksum (sha1) extensions.
//!
//! - `OPTIONS /labs/upload/tus` — what this server speaks (`Tus-Version`, `Tus-Extension`,
//!   `Tus-Max-Size`, `Tus-Checksum-Algorithm`).
//! - `POST /labs/upload/tus` with `Upload-Length` (and `Upload-Metadata`, `filename` used as the
//!   name) — creates the upload; `201` with `Location` and `Upload-Expires`.
//! - `HEAD /labs/upload/tus/<id>` — `Upload-Offset`: how much the server has, so a client that
//!   lost its connection knows where to resume.
//! - `PATCH /labs/upload/tus/<id>` (`application/offset+octet-stream`, `Upload-Offset` equal to
//!   the server's, else `409`) — appends. Whatever arrives before a connection drops is kept.
//!   With `Upload-Checksum: sha1 <base64>` the chunk is checked and, on a mismatch, cut off
//!   again (`460`).
//! - `DELETE /labs/upload/tus/<id>` — terminates (`204`).
//!
//! On disk an upload is `<learner>/tus/<id>.bin` plus `<id>.info.json` (length, name, expiry).
//! The running SHA-256 and [`CsvAggregator`] of the bytes so far live in memory between
//! PATCHes; after a restart, or when a PATCH was cut off mid-chunk, they are rebuilt by reading
//! the stored bytes once. When the last byte arrives the file becomes an ordinary stored file
//! with the same id (`GET /labs/upload/api/files/<id>` has its summary).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use super::api::{Uploader, base_url, refuse};
use super::body::{self, SharedBody};
use super::csv_stream::CsvAggregator;
use super::limits::{Code, UploadError, human_bytes};
use super::storage::{
    SNIFF_BYTES, StoredFile, allowed_extension, clean_name, hex, is_id, new_id, sniff_text,
};
use crate::app::AppState;

pub const TUS_PATH: &str = "/labs/upload/tus";
const VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,termination,expiration,checksum";

/// The stored description of a tus upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TusInfo {
    id: String,
    name: String,
    length: u64,
    /// The client's `Upload-Metadata`, given back on HEAD.
    metadata: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// The running digest and aggregate of the bytes stored so far.
struct Live {
    offset: u64,
    sha256: Sha256,
    csv: CsvAggregator,
    sample: Vec<u8>,
    /// A PATCH was interrupted between feeding the digests and writing: rebuild from disk.
    dirty: bool,
}

/// Per-upload state shared by requests; one PATCH at a time per upload (the async mutex).
#[derive(Default)]
pub struct TusRegistry {
    live: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Live>>>>>,
}

impl TusRegistry {
    fn entry(&self, id: &str) -> Arc<tokio::sync::Mutex<Option<Live>>> {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.entry(id.to_string()).or_default().clone()
    }

    fn forget(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.remove(id);
    }
}

fn tus_headers(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("tus-resumable"),
        HeaderValue::from_static(VERSION),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn tus_error(err: UploadError) -> Response {
    let mut response = err.into_response();
    tus_headers(&mut response);
    response
}

fn http_date(at: DateTime<Utc>) -> String {
    at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// `None` when the client speaks our tus version, else the 412 answer.
fn version_error(headers: &HeaderMap) -> Option<Response> {
    if header_str(headers, "tus-resumable") == Some(VERSION) {
        return None;
    }
    let mut response = UploadError::new(
        Code::BadRequest,
        "Send Tus-Resumable: 1.0.0; it is the only tus version this server speaks.",
    )
    .into_response();
    *response.status_mut() = StatusCode::PRECONDITION_FAILED;
    response.headers_mut().insert(
        HeaderName::from_static("tus-version"),
        HeaderValue::from_static(VERSION),
    );
    tus_headers(&mut response);
    Some(response)
}

/// `OPTIONS`: the server's capabilities.
pub async fn options(State(state): State<AppState>) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut response);
    let headers = response.headers_mut();
    headers.insert(
        HeaderName::from_static("tus-version"),
        HeaderValue::from_static(VERSION),
    );
    headers.insert(
        HeaderName::from_static("tus-extension"),
        HeaderValue::from_static(EXTENSIONS),
    );
    headers.insert(
        HeaderName::from_static("tus-max-size"),
        HeaderValue::from(state.uploads.limits.max_file_bytes),
    );
    headers.insert(
        HeaderName::from_static("tus-checksum-algorithm"),
        HeaderValue::from_static("sha1"),
    );
    response
}

fn dir(state: &AppState, ns: &str) -> Result<PathBuf, UploadError> {
    Ok(state.uploads.storage.learner_dir(ns)?.join("tus"))
}

fn paths(state: &AppState, ns: &str, id: &str) -> Result<(PathBuf, PathBuf), UploadError> {
    let dir = dir(state, ns)?;
    Ok((
        dir.join(format!("{id}.bin")),
        dir.join(format!("{id}.info.json")),
    ))
}

/// `filename` from `Upload-Metadata: key base64,key base64`.
fn metadata_value(metadata: &str, key: &str) -> Option<String> {
    metadata.split(',').find_map(|pair| {
        let mut parts = pair.trim().splitn(2, ' ');
        (parts.next()? == key).then(|| {
            parts
                .next()
                .and_then(|v| STANDARD.decode(v.trim()).ok())
                .and_then(|v| String::from_utf8(v).ok())
                .unwrap_or_default()
        })
    })
}

/// `POST /labs/upload/tus`: creation.
pub async fn create(
    State(state): State<AppState>,
    uploader: Uploader,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = version_error(&headers) {
        return response;
    }
    match create_inner(&state, &uploader.namespace, &headers).await {
        Ok(response) => response,
        Err(err) => tus_error(err),
    }
}

async fn create_inner(
    state: &AppState,
    ns: &str,
    headers: &HeaderMap,
) -> Result<Response, UploadError> {
    let limits = &state.uploads.limits;
    let length: u64 = header_str(headers, "upload-length")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            UploadError::new(
                Code::BadRequest,
                "Send Upload-Length with the file's size in bytes (deferred lengths are not supported).",
            )
        })?;
    if length > limits.max_file_bytes {
        return Err(UploadError::new(
            Code::FileSize,
            format!(
                "Upload-Length is {}; a file may be at most {}.",
                human_bytes(length),
                human_bytes(limits.max_file_bytes)
            ),
        )
        .with("limit", limits.max_file_bytes));
    }
    let metadata = header_str(headers, "upload-metadata")
        .unwrap_or("")
        .to_string();
    let name =
        clean_name(&metadata_value(&metadata, "filename").unwrap_or_else(|| "upload.csv".into()));
    if !allowed_extension(&name) {
        return Err(UploadError::new(
            Code::FileType,
            format!("{name}: only .csv, .tsv and .txt files are accepted here."),
        ));
    }
    let id = new_id();
    let (data, info_path) = paths(state, ns, &id)?;
    if let Some(parent) = data.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(UploadError::storage)?;
    }
    let now = Utc::now();
    let info = TusInfo {
        id: id.clone(),
        name,
        length,
        metadata,
        created_at: now,
        expires_at: now + chrono::Duration::seconds(limits.tus_expiry_secs as i64),
    };
    tokio::fs::write(&data, b"")
        .await
        .map_err(UploadError::storage)?;
    let json = serde_json::to_vec(&info).map_err(UploadError::storage)?;
    tokio::fs::write(&info_path, json)
        .await
        .map_err(UploadError::storage)?;
    let mut response = StatusCode::CREATED.into_response();
    tus_headers(&mut response);
    let location = format!("{}{TUS_PATH}/{id}", base_url(state, headers));
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&location) {
        h.insert(header::LOCATION, value);
    }
    if let Ok(value) = HeaderValue::from_str(&http_date(info.expires_at)) {
        h.insert(HeaderName::from_static("upload-expires"), value);
    }
    h.insert(
        HeaderName::from_static("upload-offset"),
        HeaderValue::from(0u64),
    );
    Ok(response)
}

/// The upload's info, or 404 / 410 (an expired upload is deleted when it is next touched).
async fn load(state: &AppState, ns: &str, id: &str) -> Result<TusInfo, UploadError> {
    let missing = || {
        UploadError::new(
            Code::NotFound,
            "No such upload: it finished, was terminated, or is not yours.",
        )
        .body_read()
    };
    if !is_id(id) {
        return Err(missing());
    }
    let (data, info_path) = paths(state, ns, id)?;
    let bytes = tokio::fs::read(&info_path).await.map_err(|_| missing())?;
    let info: TusInfo = serde_json::from_slice(&bytes).map_err(UploadError::storage)?;
    if info.expires_at < Utc::now() {
        let _ = tokio::fs::remove_file(&data).await;
        let _ = tokio::fs::remove_file(&info_path).await;
        state.uploads.tus.forget(id);
        return Err(UploadError::new(
            Code::Gone,
            "This upload expired before it was finished and has been deleted. Start a new one.",
        )
        .body_read());
    }
    Ok(info)
}

async fn disk_offset(state: &AppState, ns: &str, id: &str) -> Result<u64, UploadError> {
    let (data, _) = paths(state, ns, id)?;
    tokio::fs::metadata(&data)
        .await
        .map(|m| m.len())
        .map_err(UploadError::storage)
}

/// `HEAD /labs/upload/tus/<id>`: the offset to resume from.
pub async fn head(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
) -> Response {
    let info = match load(&state, &uploader.namespace, &id).await {
        Ok(info) => info,
        Err(err) => {
            // HEAD answers carry no body: the status alone says it.
            let mut response = err.code.status().into_response();
            tus_headers(&mut response);
            return response;
        }
    };
    // Wait for a PATCH still writing (a client that resumes quickly may HEAD before the old
    // connection's handler has seen the disconnect).
    let entry = state.uploads.tus.entry(&id);
    let guard = entry.lock().await;
    let offset = match guard.as_ref() {
        Some(live) if !live.dirty => live.offset,
        _ => match disk_offset(&state, &uploader.namespace, &id).await {
            Ok(offset) => offset,
            Err(err) => return tus_error(err.body_read()),
        },
    };
    drop(guard);
    let mut response = StatusCode::OK.into_response();
    tus_headers(&mut response);
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static("upload-offset"),
        HeaderValue::from(offset),
    );
    h.insert(
        HeaderName::from_static("upload-length"),
        HeaderValue::from(info.length),
    );
    if let Ok(value) = HeaderValue::from_str(&info.metadata)
        && !info.metadata.is_empty()
    {
        h.insert(HeaderName::from_static("upload-metadata"), value);
    }
    if let Ok(value) = HeaderValue::from_str(&http_date(info.expires_at)) {
        h.insert(HeaderName::from_static("upload-expires"), value);
    }
    response
}

/// Reads the stored bytes once to rebuild the running digests.
async fn rebuild(data: &std::path::Path) -> Result<Live, UploadError> {
    let mut file = tokio::fs::File::open(data)
        .await
        .map_err(UploadError::storage)?;
    let mut live = Live {
        offset: 0,
        sha256: Sha256::new(),
        csv: CsvAggregator::new(),
        sample: Vec::new(),
        dirty: false,
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).await.map_err(UploadError::storage)?;
        if n == 0 {
            break;
        }
        feed(&mut live, &buf[..n]);
    }
    Ok(live)
}

fn feed(live: &mut Live, chunk: &[u8]) {
    if live.sample.len() < SNIFF_BYTES {
        let take = (SNIFF_BYTES - live.sample.len()).min(chunk.len());
        live.sample.extend_from_slice(&chunk[..take]);
    }
    live.sha256.update(chunk);
    live.csv.push(chunk);
    live.offset += chunk.len() as u64;
}

/// `PATCH /labs/upload/tus/<id>`: append at `Upload-Offset`.
pub async fn patch(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if let Some(response) = version_error(&parts.headers) {
        return response;
    }
    let (body, handle) = body::shared(body);
    match patch_inner(&state, &uploader.namespace, &id, &parts.headers, body).await {
        Ok(response) => response,
        Err(err) => {
            let mut response = refuse(err, handle, &parts.headers);
            tus_headers(&mut response);
            response
        }
    }
}

async fn patch_inner(
    state: &AppState,
    ns: &str,
    id: &str,
    headers: &HeaderMap,
    body: SharedBody,
) -> Result<Response, UploadError> {
    let lab = &state.uploads;
    if header_str(headers, "content-type") != Some("application/offset+octet-stream") {
        return Err(UploadError::new(
            Code::MediaType,
            "A tus PATCH must have Content-Type: application/offset+octet-stream.",
        ));
    }
    let client_offset: u64 = header_str(headers, "upload-offset")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| UploadError::new(Code::BadRequest, "Send Upload-Offset with the PATCH."))?;
    let checksum = match header_str(headers, "upload-checksum") {
        None => None,
        Some(value) => match value.split_once(' ') {
            Some(("sha1", digest)) => Some(STANDARD.decode(digest.trim()).map_err(|_| {
                UploadError::new(
                    Code::BadRequest,
                    "Upload-Checksum must be `sha1 <base64 digest>`.",
                )
            })?),
            _ => {
                return Err(UploadError::new(
                    Code::BadRequest,
                    "Only sha1 checksums are supported (Tus-Checksum-Algorithm: sha1).",
                ));
            }
        },
    };
    let info = load(state, ns, id).await?;
    let (data, info_path) = paths(state, ns, id)?;
    let slot = lab.acquire(ns, "tus", &info.name, Some(info.length))?;
    let entry = lab.tus.entry(id);
    let mut guard = entry.lock().await;
    let mut live = match guard.take() {
        Some(live) if !live.dirty => live,
        _ => rebuild(&data).await?,
    };
    slot.progress.advance(live.offset, live.csv.rows());
    if client_offset != live.offset {
        let offset = live.offset;
        *guard = Some(live);
        return Err(UploadError::new(
            Code::OffsetMismatch,
            format!("Upload-Offset is {client_offset} but the server has {offset} bytes; HEAD the upload and resume from there."),
        )
        .with("offset", offset));
    }
    let start = live.offset;
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&data)
        .await
        .map_err(UploadError::storage)?;
    let mut sha1 = checksum.as_ref().map(|_| Sha1::new());
    let mut stream = body;
    let mut outcome = Ok(());
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            // The client went away: keep what arrived, so it can resume from there.
            Err(_) => break,
        };
        if live.offset + chunk.len() as u64 > info.length {
            outcome = Err(UploadError::new(
                Code::FileSize,
                format!(
                    "This PATCH goes past Upload-Length ({} bytes).",
                    info.length
                ),
            )
            .with("limit", info.length));
            break;
        }
        // Marked dirty until the chunk is both fed and written. (Should this future be dropped
        // mid-chunk, `guard` still holds `None` from the `take` above: the next request
        // rebuilds from disk either way.)
        live.dirty = true;
        feed(&mut live, &chunk);
        if let Some(sha1) = sha1.as_mut() {
            sha1.update(&chunk);
        }
        if let Err(err) = file.write_all(&chunk).await {
            outcome = Err(UploadError::storage(err));
            break;
        }
        live.dirty = false;
        slot.progress.advance(chunk.len() as u64, live.csv.rows());
        if live.sample.len() >= SNIFF_BYTES || live.offset == info.length {
            if let Err(why) = sniff_text(&live.sample, live.offset == info.length) {
                drop(file);
                let _ = tokio::fs::remove_file(&data).await;
                let _ = tokio::fs::remove_file(&info_path).await;
                lab.tus.forget(id);
                return Err(UploadError::new(
                    Code::FileType,
                    format!(
                        "{} does not look like a CSV file: {why}. The upload was deleted.",
                        info.name
                    ),
                ));
            }
            // Checked once; keep the sample from growing past the first KiB.
            live.sample.truncate(SNIFF_BYTES);
        }
    }
    file.flush().await.map_err(UploadError::storage)?;
    if let (Some(expected), Some(sha1)) = (checksum, sha1)
        && outcome.is_ok()
        && sha1.finalize().as_slice() != expected.as_slice()
    {
        // Cut the chunk off again; the digests are rebuilt from disk on the next PATCH.
        let _ = file.set_len(start).await;
        let _ = file.seek(std::io::SeekFrom::Start(start)).await;
        *guard = None;
        return Err(UploadError::new(
            Code::ChecksumMismatch,
            format!("The chunk's sha1 did not match Upload-Checksum; it was discarded. Resume from offset {start}."),
        )
        .with("offset", start)
        .body_read());
    }
    let offset = live.offset;
    if offset == info.length {
        drop(file);
        let stored = complete(state, ns, &info, live, &data, &info_path).await?;
        *guard = None;
        drop(guard);
        lab.tus.forget(id);
        tracing::info!(namespace = ns, id = %stored.id, bytes = stored.size, rows = stored.summary.rows, "tus upload complete");
    } else {
        *guard = Some(live);
    }
    outcome?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut response);
    let h = response.headers_mut();
    h.insert(
        HeaderName::from_static("upload-offset"),
        HeaderValue::from(offset),
    );
    if let Ok(value) = HeaderValue::from_str(&http_date(info.expires_at)) {
        h.insert(HeaderName::from_static("upload-expires"), value);
    }
    Ok(response)
}

/// The last byte arrived: the upload becomes a stored file with the same id.
async fn complete(
    state: &AppState,
    ns: &str,
    info: &TusInfo,
    live: Live,
    data: &std::path::Path,
    info_path: &std::path::Path,
) -> Result<StoredFile, UploadError> {
    let storage = &state.uploads.storage;
    let stored = StoredFile {
        id: info.id.clone(),
        name: info.name.clone(),
        field: "tus".into(),
        size: live.offset,
        sha256: hex(&live.sha256.finalize()),
        created_at: Utc::now(),
        summary: live.csv.finish(),
    };
    let learner_dir = storage.learner_dir(ns)?;
    tokio::fs::rename(data, storage.data_path(ns, &info.id)?)
        .await
        .map_err(UploadError::storage)?;
    let json = serde_json::to_vec(&stored).map_err(UploadError::storage)?;
    tokio::fs::write(learner_dir.join(format!("{}.json", info.id)), json)
        .await
        .map_err(UploadError::storage)?;
    let _ = tokio::fs::remove_file(info_path).await;
    Ok(stored)
}

/// `DELETE /labs/upload/tus/<id>`: termination.
pub async fn terminate(
    State(state): State<AppState>,
    uploader: Uploader,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(response) = version_error(&headers) {
        return response;
    }
    if let Err(err) = load(&state, &uploader.namespace, &id).await {
        return tus_error(err);
    }
    let entry = state.uploads.tus.entry(&id);
    let _guard = entry.lock().await;
    if let Ok((data, info_path)) = paths(&state, &uploader.namespace, &id) {
        let _ = tokio::fs::remove_file(&data).await;
        let _ = tokio::fs::remove_file(&info_path).await;
    }
    state.uploads.tus.forget(&id);
    let mut response = StatusCode::NO_CONTENT.into_response();
    tus_headers(&mut response);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode() {
        let metadata = "filename ZGF0YS5jc3Y=,filetype dGV4dC9jc3Y=,empty";
        assert_eq!(
            metadata_value(metadata, "filename").as_deref(),
            Some("data.csv")
        );
        assert_eq!(
            metadata_value(metadata, "filetype").as_deref(),
            Some("text/csv")
        );
        assert_eq!(metadata_value(metadata, "empty").as_deref(), Some(""));
        assert_eq!(metadata_value(metadata, "nope"), None);
    }
}
