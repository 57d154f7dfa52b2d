//! Static assets with cache busting.
//!
//! At start-up every file under the static directory is hashed; templates link to
//! `/static/<path>?v=<hash>`, and such versioned requests are served with a one-year immutable
//! cache lifetime, so a deploy that changes a file changes its URL. The highlighting stylesheet
//! is generated from the syntect themes and served the same way.

use std::collections::HashMap;
use std::path::Path;

use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};

use crate::content::highlight;

#[derive(Debug, Default)]
pub struct SiteInfo {
    /// Relative path under `/static/` → content hash.
    versions: HashMap<String, String>,
    pub highlight_css: String,
    highlight_version: String,
    pub dev: bool,
}

fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SiteInfo {
    pub fn load(static_dir: &Path, dev: bool) -> SiteInfo {
        let mut versions = HashMap::new();
        let mut stack = vec![static_dir.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let (Ok(bytes), Ok(rel)) =
                    (std::fs::read(&path), path.strip_prefix(static_dir))
                {
                    versions.insert(rel.to_string_lossy().replace('\\', "/"), short_hash(&bytes));
                }
            }
        }
        let highlight_css = highlight::stylesheet();
        let highlight_version = short_hash(highlight_css.as_bytes());
        SiteInfo {
            versions,
            highlight_css,
            highlight_version,
            dev,
        }
    }

    /// Whether a built asset is present (the page works without JS if the bundle was not built).
    pub fn has(&self, path: &str) -> bool {
        self.versions.contains_key(path)
    }

    pub fn asset(&self, path: &str) -> String {
        match self.versions.get(path) {
            Some(v) => format!("/static/{path}?v={v}"),
            None => format!("/static/{path}"),
        }
    }

    pub fn highlight_css_url(&self) -> String {
        format!("/highlight.css?v={}", self.highlight_version)
    }
}

/// Versioned URLs are immutable; anything else must be revalidated.
pub async fn cache_headers(request: Request, next: Next) -> Response {
    let versioned = request.uri().query().is_some_and(|q| q.starts_with("v="));
    let mut response = next.run(request).await;
    if response.status().is_success() {
        let value = if versioned {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        };
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static(value));
    }
    response
}
