//! Local-disk storage for uploads, one folder per learner, and the [`FileSink`] every upload path
//! streams through.
//!
//! Layout under the configured folder (`LABDECK_UPLOAD_DIR`):
//!
//! ```text
//! <learner namespace>/<id>.part   bytes while an upload is in flight (deleted if it fails)
//! <learner namespace>/<id>.csv    a finished file
//! <learner namespace>/<id>.json   its metadata and CSV summary ([`StoredFile`])
//! <learner namespace>/tus/…       resumable uploads in progress (see `tus.rs`)
//! ```
//!
//! A [`FileSink`] takes the body chunk by chunk as it arrives: it checks the size limit, sniffs
//! the first KiB for text, feeds the SHA-256 and the [`CsvAggregator`] and appends the chunk to
//! the `.part` file — one pass, nothing kept but the current chunk. `finish` renames the part
//! and writes the metadata; dropping an unfinished sink (an error, a limit, the client going
//! away) deletes the part, so no half file is ever left or listed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::csv_stream::{CsvAggregator, CsvSummary};
use super::limits::{Code, UploadError, human_bytes};
use super::service::Progress;

/// Bytes sniffed at the start of each file to tell text from binary.
pub const SNIFF_BYTES: usize = 1024;
/// Extensions the type filter accepts.
pub const EXTENSIONS: [&str; 3] = ["csv", "tsv", "txt"];
/// Write buffer per upload: large enough to keep the number of blocking writes low, small
/// enough that fifty uploads at once stay a few MiB.
const WRITE_BUFFER: usize = 128 * 1024;

/// A finished upload: what the API answers and what the `.json` next to the data holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredFile {
    pub id: String,
    pub name: String,
    /// The form field it came in (multipart), or how it came (`raw`, `presigned`, `tus`, `buffered`).
    pub field: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    pub summary: CsvSummary,
}

#[derive(Debug, Clone)]
pub struct Storage {
    root: PathBuf,
}

/// Ids are ours (uuid hex), never a client's path: checked before they touch the filesystem.
pub fn is_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

pub fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Learner namespaces are `u<digits>` or `v<hex>` (see the rate-limiter lab's service), so
/// they are safe folder names; anything else is refused rather than escaped.
fn is_namespace(ns: &str) -> bool {
    !ns.is_empty() && ns.len() <= 40 && ns.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// A display name from a client-given filename: last path segment, no control characters.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let cleaned: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    if cleaned.trim().is_empty() {
        "upload.csv".to_string()
    } else {
        cleaned
    }
}

/// Does this name have an extension the type filter accepts?
pub fn allowed_extension(name: &str) -> bool {
    name.rsplit_once('.').is_some_and(|(_, ext)| {
        EXTENSIONS
            .iter()
            .any(|allowed| ext.eq_ignore_ascii_case(allowed))
    })
}

/// Is a declared content type one a CSV may come with? Browsers send `text/csv`,
/// `application/vnd.ms-excel` (Windows) or `application/octet-stream` for the same file.
pub fn allowed_content_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "" | "application/csv" | "application/vnd.ms-excel" | "application/octet-stream"
        )
}

/// The first bytes of a file are text: no NUL, valid UTF-8 (a character cut off by the end of
/// the sample is fine unless the file ends there).
pub fn sniff_text(sample: &[u8], whole_file: bool) -> Result<(), &'static str> {
    if sample.contains(&0) {
        return Err("it contains NUL bytes, so it is binary, not CSV");
    }
    match std::str::from_utf8(sample) {
        Ok(_) => Ok(()),
        Err(err) if err.error_len().is_none() && !whole_file => Ok(()),
        Err(_) => Err("its first KiB is not UTF-8 text"),
    }
}

impl Storage {
    pub fn new(root: PathBuf) -> Storage {
        Storage { root }
    }

    pub fn learner_dir(&self, ns: &str) -> Result<PathBuf, UploadError> {
        if !is_namespace(ns) {
            return Err(UploadError::storage(format!("unexpected namespace {ns:?}")));
        }
        Ok(self.root.join(ns))
    }

    pub fn data_path(&self, ns: &str, id: &str) -> Result<PathBuf, UploadError> {
        Ok(self.learner_dir(ns)?.join(format!("{id}.csv")))
    }

    fn meta_path(&self, ns: &str, id: &str) -> Result<PathBuf, UploadError> {
        Ok(self.learner_dir(ns)?.join(format!("{id}.json")))
    }

    /// A learner's finished files, newest first.
    pub async fn list(&self, ns: &str) -> Result<Vec<StoredFile>, UploadError> {
        let dir = self.learner_dir(ns)?;
        let mut files = Vec::new();
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(err) => return Err(UploadError::storage(err)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(UploadError::storage)? {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Some(file) = read_meta(&path).await
            {
                files.push(file);
            }
        }
        files.sort_by_key(|f| std::cmp::Reverse(f.created_at));
        Ok(files)
    }

    pub async fn get(&self, ns: &str, id: &str) -> Result<Option<StoredFile>, UploadError> {
        if !is_id(id) {
            return Ok(None);
        }
        Ok(read_meta(&self.meta_path(ns, id)?).await)
    }

    /// Deletes a learner's file; `false` when there was none.
    pub async fn delete(&self, ns: &str, id: &str) -> Result<bool, UploadError> {
        if !is_id(id) {
            return Ok(false);
        }
        let existed = tokio::fs::remove_file(self.meta_path(ns, id)?)
            .await
            .is_ok();
        let _ = tokio::fs::remove_file(self.data_path(ns, id)?).await;
        Ok(existed)
    }

    /// Starts a new file for `ns` (under a new id unless one is given): the part file exists
    /// once this returns.
    pub async fn sink(
        &self,
        ns: &str,
        id: Option<String>,
        name: &str,
        field: &str,
        max_size: u64,
        progress: Arc<Progress>,
    ) -> Result<FileSink, UploadError> {
        let dir = self.learner_dir(ns)?;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(UploadError::storage)?;
        let id = id.unwrap_or_else(new_id);
        let part_path = dir.join(format!("{id}.part"));
        let file = tokio::fs::File::create(&part_path)
            .await
            .map_err(UploadError::storage)?;
        Ok(FileSink {
            file: BufWriter::with_capacity(WRITE_BUFFER, file),
            data_path: dir.join(format!("{id}.csv")),
            meta_path: dir.join(format!("{id}.json")),
            part_path,
            id,
            name: clean_name(name),
            field: field.to_string(),
            hasher: Sha256::new(),
            csv: Some(CsvAggregator::new()),
            size: 0,
            max_size,
            sample: Vec::new(),
            sniffed: false,
            progress,
            committed: false,
        })
    }
}

async fn read_meta(path: &Path) -> Option<StoredFile> {
    let bytes = tokio::fs::read(path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One file being written: see the module docs.
pub struct FileSink {
    file: BufWriter<tokio::fs::File>,
    part_path: PathBuf,
    data_path: PathBuf,
    meta_path: PathBuf,
    pub id: String,
    pub name: String,
    field: String,
    hasher: Sha256,
    // An Option only so `finish` can take it out of a type that implements Drop.
    csv: Option<CsvAggregator>,
    pub size: u64,
    max_size: u64,
    sample: Vec<u8>,
    sniffed: bool,
    progress: Arc<Progress>,
    committed: bool,
}

impl FileSink {
    /// Takes the next chunk of the file. A limit or a type check failing here ends the upload:
    /// the caller answers with the error and drops the sink, which deletes the part.
    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), UploadError> {
        if self.size + chunk.len() as u64 > self.max_size {
            return Err(UploadError::new(
                Code::FileSize,
                format!(
                    "{} is larger than the {} limit per file; nothing was kept.",
                    self.name,
                    human_bytes(self.max_size)
                ),
            )
            .with("limit", self.max_size)
            .with("file", self.name.clone())
            .with("field", self.field.clone()));
        }
        if !self.sniffed {
            let take = (SNIFF_BYTES - self.sample.len()).min(chunk.len());
            self.sample.extend_from_slice(&chunk[..take]);
            if self.sample.len() >= SNIFF_BYTES {
                self.check_sample(false)?;
            }
        }
        self.hasher.update(chunk);
        let mut rows = 0;
        if let Some(csv) = self.csv.as_mut() {
            csv.push(chunk);
            rows = csv.rows();
        }
        self.file
            .write_all(chunk)
            .await
            .map_err(UploadError::storage)?;
        self.size += chunk.len() as u64;
        self.progress.advance(chunk.len() as u64, rows);
        Ok(())
    }

    fn check_sample(&mut self, whole_file: bool) -> Result<(), UploadError> {
        self.sniffed = true;
        let sample = std::mem::take(&mut self.sample);
        sniff_text(&sample, whole_file).map_err(|why| {
            UploadError::new(
                Code::FileType,
                format!("{} does not look like a CSV file: {why}.", self.name),
            )
            .with("file", self.name.clone())
            .with("field", self.field.clone())
        })
    }

    /// Stores the file and its summary.
    pub async fn finish(mut self) -> Result<StoredFile, UploadError> {
        if !self.sniffed {
            self.check_sample(true)?;
        }
        // Flushed, not fsynced: like multer's disk storage, durability is left to the OS.
        self.file.flush().await.map_err(UploadError::storage)?;
        let summary = self
            .csv
            .take()
            .map(CsvAggregator::finish)
            .ok_or_else(|| UploadError::storage("sink finished twice"))?;
        let stored = StoredFile {
            id: self.id.clone(),
            name: self.name.clone(),
            field: self.field.clone(),
            size: self.size,
            sha256: hex(&std::mem::take(&mut self.hasher).finalize()),
            created_at: Utc::now(),
            summary,
        };
        tokio::fs::rename(&self.part_path, &self.data_path)
            .await
            .map_err(UploadError::storage)?;
        let json = serde_json::to_vec(&stored).map_err(UploadError::storage)?;
        tokio::fs::write(&self.meta_path, json)
            .await
            .map_err(UploadError::storage)?;
        self.committed = true;
        Ok(stored)
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        if !self.committed {
            // Synchronous on purpose: this also runs when the request future is dropped (the
            // client went away), where nothing async can follow. Unlinking is one quick call.
            let _ = std::fs::remove_file(&self.part_path);
            let _ = std::fs::remove_file(&self.data_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing_tells_text_from_binary() {
        assert!(sniff_text(b"a,b\n1,2\n", true).is_ok());
        assert!(sniff_text(b"a,b\0", true).is_err());
        assert!(sniff_text(&[0xff, 0xfe, b'a'], true).is_err());
        // "é" cut in half by the end of the sample is fine, unless the file ends there.
        assert!(sniff_text(&[b'a', 0xc3], false).is_ok());
        assert!(sniff_text(&[b'a', 0xc3], true).is_err());
    }

    #[test]
    fn names_and_types() {
        assert_eq!(clean_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_name("C:\\x\\data.csv"), "data.csv");
        assert!(allowed_extension("Data.CSV"));
        assert!(!allowed_extension("image.png"));
        assert!(!allowed_extension("csv"));
        assert!(allowed_content_type("text/csv; charset=utf-8"));
        assert!(allowed_content_type("application/vnd.ms-excel"));
        assert!(!allowed_content_type("image/png"));
        assert!(is_id(&new_id()));
        assert!(!is_id("../x"));
    }
}
