//! Signed URLs: presigned uploads (`PUT`) and expiring downloads (`GET`).
//!
//! The server signs what the holder of the URL may do — the method, the object key (which starts
//! with the learner's namespace, so a URL can only ever reach its owner's folder), the expiry, the
//! allowed size range and content type — with HMAC-SHA256 under a key derived from
//! `LABDECK_SECRET`. The client then talks to the URL with no cookie, session or CSRF token: the
//! signature is the authorisation. Any change to any of those values breaks the signature; a
//! valid signature past its expiry is refused with its own message, and the server still
//! enforces the size range and type while the body streams in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::limits::{Code, UploadError};

pub const DIRECT_PREFIX: &str = "/labs/upload/direct";
pub const DOWNLOAD_PREFIX: &str = "/labs/upload/download";

/// What a presigned upload URL allows; every field is covered by the signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadGrant {
    /// `<namespace>/<id>`: the learner's prefix and the id the file will get.
    pub key: String,
    pub name: String,
    pub content_type: String,
    pub min_bytes: u64,
    pub max_bytes: u64,
    /// Unix seconds.
    pub expires: i64,
}

/// The query string of a presigned upload URL.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadQuery {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub content_type: Option<String>,
    pub min: Option<u64>,
    pub max: Option<u64>,
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

/// The query string of a signed download URL.
#[derive(Debug, Clone, Deserialize)]
pub struct DownloadQuery {
    pub expires: Option<i64>,
    pub sig: Option<String>,
}

fn mac(key: &[u8], parts: &[&str]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    for part in parts {
        // Length-prefixed, so no two different field lists can sign the same bytes.
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl UploadGrant {
    fn signature(&self, key: &[u8]) -> String {
        mac(
            key,
            &[
                "PUT",
                &self.key,
                &self.name,
                &self.content_type,
                &self.min_bytes.to_string(),
                &self.max_bytes.to_string(),
                &self.expires.to_string(),
            ],
        )
    }

    /// The path and query a client PUTs to.
    pub fn url(&self, key: &[u8]) -> String {
        let query = serde_urlencoded::to_string([
            ("name", self.name.as_str()),
            ("type", self.content_type.as_str()),
            ("min", &self.min_bytes.to_string()),
            ("max", &self.max_bytes.to_string()),
            ("expires", &self.expires.to_string()),
            ("sig", &self.signature(key)),
        ])
        .unwrap_or_default();
        format!("{DIRECT_PREFIX}/{}?{query}", self.key)
    }

    /// The grant a presigned URL stands for, if it is genuine and still valid at `now`.
    pub fn verify(
        key: &[u8],
        namespace: &str,
        id: &str,
        query: &UploadQuery,
        now: i64,
    ) -> Result<UploadGrant, UploadError> {
        let tampered = || {
            UploadError::new(
                Code::BadSignature,
                "This upload URL is not valid: it was changed or not issued by labdeck. Ask for a new one (POST /labs/upload/api/presign).",
            )
        };
        let (Some(name), Some(content_type), Some(min), Some(max), Some(expires), Some(sig)) = (
            query.name.clone(),
            query.content_type.clone(),
            query.min,
            query.max,
            query.expires,
            query.sig.as_deref(),
        ) else {
            return Err(tampered());
        };
        let grant = UploadGrant {
            key: format!("{namespace}/{id}"),
            name,
            content_type,
            min_bytes: min,
            max_bytes: max,
            expires,
        };
        if !same(sig, &grant.signature(key)) {
            return Err(tampered());
        }
        if now > expires {
            return Err(UploadError::new(
                Code::Expired,
                format!(
                    "This upload URL expired {} s ago. Ask for a new one.",
                    now - expires
                ),
            ));
        }
        Ok(grant)
    }
}

/// A signed download URL's path and query for `<namespace>/<id>`.
pub fn download_url(key: &[u8], namespace: &str, id: &str, expires: i64) -> String {
    let object = format!("{namespace}/{id}");
    let sig = mac(key, &["GET", &object, &expires.to_string()]);
    format!("{DOWNLOAD_PREFIX}/{object}?expires={expires}&sig={sig}")
}

/// Checks a download URL's signature and expiry.
pub fn verify_download(
    key: &[u8],
    namespace: &str,
    id: &str,
    query: &DownloadQuery,
    now: i64,
) -> Result<(), UploadError> {
    let tampered = || {
        UploadError::new(
            Code::BadSignature,
            "This download link is not valid: it was changed or is for another file. Get a fresh link from the lab page.",
        )
        .body_read()
    };
    let (Some(expires), Some(sig)) = (query.expires, query.sig.as_deref()) else {
        return Err(tampered());
    };
    let object = format!("{namespace}/{id}");
    if !same(sig, &mac(key, &["GET", &object, &expires.to_string()])) {
        return Err(tampered());
    }
    if now > expires {
        return Err(UploadError::new(
            Code::Expired,
            format!(
                "This download link expired {} s ago. Get a fresh one from the lab page.",
                now - expires
            ),
        )
        .body_read());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> UploadGrant {
        UploadGrant {
            key: "v0123456789abcdef/0123456789abcdef0123456789abcdef".into(),
            name: "data.csv".into(),
            content_type: "text/csv".into(),
            min_bytes: 1,
            max_bytes: 1000,
            expires: 2_000,
        }
    }

    fn query_of(url: &str) -> UploadQuery {
        let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
        serde_urlencoded::from_str(query).expect("query")
    }

    #[test]
    fn a_grant_round_trips_and_any_change_breaks_it() {
        let key = b"k";
        let grant = grant();
        let url = grant.url(key);
        let (ns, id) = grant.key.split_once('/').expect("key");
        let query = query_of(&url);
        assert_eq!(
            UploadGrant::verify(key, ns, id, &query, 1_000).expect("valid"),
            grant
        );
        let mut bigger = query.clone();
        bigger.max = Some(10_000);
        assert_eq!(
            UploadGrant::verify(key, ns, id, &bigger, 1_000)
                .err()
                .map(|e| e.code),
            Some(Code::BadSignature)
        );
        assert_eq!(
            UploadGrant::verify(key, "v1111111111111111", id, &query, 1_000)
                .err()
                .map(|e| e.code),
            Some(Code::BadSignature)
        );
        assert_eq!(
            UploadGrant::verify(b"other", ns, id, &query, 1_000)
                .err()
                .map(|e| e.code),
            Some(Code::BadSignature)
        );
        assert_eq!(
            UploadGrant::verify(key, ns, id, &query, 2_001)
                .err()
                .map(|e| e.code),
            Some(Code::Expired)
        );
    }

    #[test]
    fn download_links_are_bound_to_the_object_and_expire() {
        let url = download_url(b"k", "u1", "ab", 100);
        let query: DownloadQuery =
            serde_urlencoded::from_str(url.split_once('?').map(|(_, q)| q).unwrap_or(""))
                .expect("query");
        assert!(verify_download(b"k", "u1", "ab", &query, 50).is_ok());
        assert!(verify_download(b"k", "u2", "ab", &query, 50).is_err());
        assert_eq!(
            verify_download(b"k", "u1", "ab", &query, 101)
                .err()
                .map(|e| e.code),
            Some(Code::Expired)
        );
    }
}
