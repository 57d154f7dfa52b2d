//! Every way an upload can be refused, each with its own stable error code and status.
//!
//! The codes follow multer's names (`LIMIT_FILE_SIZE`, `LIMIT_FILE_COUNT`, …) so a learner who
//! knows Express recognises them; the ones multer does not have are named in the same style.
//! Handlers return an [`UploadError`]; its response is always JSON
//! (`{"error", "message", "status", "limit"?, "field"?, "file"?}`) and, when the request body may
//! still be arriving, carries `Connection: close` so the client stops sending and the connection
//! is not reused with half a body in it.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Retry-After for a refused upload when the server or the learner is at their cap.
pub const BUSY_RETRY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// One file is larger than the per-file limit (413).
    FileSize,
    /// The whole request body is larger than the request limit (413).
    RequestSize,
    /// More files than allowed in one request (413).
    FileCount,
    /// More non-file fields than allowed (413).
    FieldCount,
    /// A non-file field's value is too long (413).
    FieldValue,
    /// A field name is too long (413).
    FieldKey,
    /// More parts than allowed (413).
    PartCount,
    /// A file arrived under a field name that does not take files (400).
    UnexpectedFile,
    /// Not a CSV / text file by extension, declared type or content (415).
    FileType,
    /// The request's Content-Type is not one this endpoint reads (415).
    MediaType,
    /// The multipart body is malformed, or carries no file (400).
    Malformed,
    /// The learner or the server has too many uploads in flight (503 + Retry-After).
    TooManyUploads,
    /// The CSRF token is missing or wrong (403).
    Csrf,
    /// An `X-Lab-Key` header that labdeck did not issue (401).
    InvalidLabKey,
    /// No such file for this learner (404).
    NotFound,
    /// A presigned or download URL is malformed, tampered with or for someone else (403).
    BadSignature,
    /// A presigned or download URL has expired (403).
    Expired,
    /// The client went away or the body could not be read (400).
    Aborted,
    /// tus: Upload-Offset does not match the server's offset (409).
    OffsetMismatch,
    /// tus: a header is missing or invalid (400).
    BadRequest,
    /// tus: the checksum of a PATCH did not match (460).
    ChecksumMismatch,
    /// tus: the upload expired or was terminated (410).
    Gone,
    /// Storage failed (500); logged with its cause.
    Storage,
}

impl Code {
    pub fn id(self) -> &'static str {
        match self {
            Code::FileSize => "LIMIT_FILE_SIZE",
            Code::RequestSize => "LIMIT_REQUEST_SIZE",
            Code::FileCount => "LIMIT_FILE_COUNT",
            Code::FieldCount => "LIMIT_FIELD_COUNT",
            Code::FieldValue => "LIMIT_FIELD_VALUE",
            Code::FieldKey => "LIMIT_FIELD_KEY",
            Code::PartCount => "LIMIT_PART_COUNT",
            Code::UnexpectedFile => "LIMIT_UNEXPECTED_FILE",
            Code::FileType => "LIMIT_FILE_TYPE",
            Code::MediaType => "UNSUPPORTED_MEDIA_TYPE",
            Code::Malformed => "MALFORMED_MULTIPART",
            Code::TooManyUploads => "TOO_MANY_UPLOADS",
            Code::Csrf => "CSRF_FAILED",
            Code::InvalidLabKey => "INVALID_LAB_KEY",
            Code::NotFound => "NOT_FOUND",
            Code::BadSignature => "BAD_SIGNATURE",
            Code::Expired => "URL_EXPIRED",
            Code::Aborted => "UPLOAD_ABORTED",
            Code::OffsetMismatch => "OFFSET_MISMATCH",
            Code::BadRequest => "BAD_REQUEST",
            Code::ChecksumMismatch => "CHECKSUM_MISMATCH",
            Code::Gone => "UPLOAD_GONE",
            Code::Storage => "STORAGE_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::FileSize
            | Code::RequestSize
            | Code::FileCount
            | Code::FieldCount
            | Code::FieldValue
            | Code::FieldKey
            | Code::PartCount => StatusCode::PAYLOAD_TOO_LARGE,
            Code::UnexpectedFile | Code::Malformed | Code::Aborted | Code::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            Code::FileType | Code::MediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::TooManyUploads => StatusCode::SERVICE_UNAVAILABLE,
            Code::Csrf | Code::BadSignature | Code::Expired => StatusCode::FORBIDDEN,
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidLabKey => StatusCode::UNAUTHORIZED,
            Code::OffsetMismatch => StatusCode::CONFLICT,
            Code::ChecksumMismatch => StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
            Code::Gone => StatusCode::GONE,
            Code::Storage => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A refused upload: the code, a message a person can act on, and details for clients.
#[derive(Debug, Clone)]
pub struct UploadError {
    pub code: Code,
    pub message: String,
    pub details: Value,
    /// The request body was not read to the end: close the connection after answering.
    pub body_unread: bool,
}

impl UploadError {
    pub fn new(code: Code, message: impl Into<String>) -> UploadError {
        UploadError {
            code,
            message: message.into(),
            details: json!({}),
            body_unread: true,
        }
    }

    pub fn with(mut self, key: &str, value: impl Into<Value>) -> UploadError {
        if let Some(details) = self.details.as_object_mut() {
            details.insert(key.to_string(), value.into());
        }
        self
    }

    /// For answers given after the whole body was read (nothing left to refuse).
    pub fn body_read(mut self) -> UploadError {
        self.body_unread = false;
        self
    }

    pub fn storage(err: impl std::fmt::Display) -> UploadError {
        tracing::error!(error = %err, "upload storage failed");
        UploadError::new(
            Code::Storage,
            "Storing the file failed on our side. It has been logged; please try again.",
        )
    }

    pub fn busy(message: impl Into<String>) -> UploadError {
        UploadError::new(Code::TooManyUploads, message).with("retry_after_seconds", BUSY_RETRY_SECS)
    }
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.id(), self.message)
    }
}

impl IntoResponse for UploadError {
    fn into_response(self) -> Response {
        let status = self.code.status();
        let mut body = json!({
            "error": self.code.id(),
            "message": self.message,
            "status": status.as_u16(),
        });
        if let (Some(body), Some(details)) = (body.as_object_mut(), self.details.as_object()) {
            body.extend(details.clone());
        }
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.code == Code::TooManyUploads {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(BUSY_RETRY_SECS));
        }
        if self.body_unread {
            // hyper stops reading the request once the handler has dropped the body; this
            // tells the client (and hyper) that the connection ends with this answer.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// "200 MiB", "8 KiB": limits as people read them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if (value - value.round()).abs() < 0.05 {
        format!("{:.0} {}", value, UNITS[unit])
    } else {
        format!("{:.1} {}", value, UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(512), "512 bytes");
        assert_eq!(human_bytes(8 * 1024 * 1024), "8 MiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }

    #[test]
    fn every_limit_has_its_status() {
        assert_eq!(Code::FileSize.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(Code::UnexpectedFile.status(), StatusCode::BAD_REQUEST);
        assert_eq!(Code::FileType.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            Code::TooManyUploads.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(Code::ChecksumMismatch.status().as_u16(), 460);
    }
}
