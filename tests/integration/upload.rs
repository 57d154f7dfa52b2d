//! The streaming-upload lab over real HTTP: multipart and raw uploads with their CSV summaries,
//! every limit and its error code, early 413s seen by a raw TCP client that never sends the
//! rest, partial files removed, the concurrency cap, learner isolation, presigned uploads,
//! signed downloads and a resumed tus upload. The bounded-memory test for a 100 MB upload is in
//! its own process (`tests/upload_memory.rs`) so no other test's memory is in its measure.

use std::path::PathBuf;
use std::time::Duration;

use labdeck::config::UploadArgs;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{TestApp, TestOptions, select};

const FILES: &str = "/labs/upload/api/files";
const CSV: &str = "id,name,amount\n1,ada,10\n2,bob,20.5\n3,cy,x\n";

/// Small limits so every one of them is quick to hit.
fn small_limits() -> UploadArgs {
    UploadArgs {
        max_file_bytes: 64 * 1024,
        max_request_bytes: 256 * 1024,
        max_files: 2,
        max_fields: 2,
        max_field_bytes: 100,
        max_parts: 4,
        per_learner: 2,
        global: 3,
        buffered_max_bytes: 32 * 1024,
        ..UploadArgs::default()
    }
}

async fn spawn_small() -> TestApp {
    TestApp::spawn_with(TestOptions {
        upload: small_limits(),
        ..TestOptions::default()
    })
    .await
}

/// A learner identity for curl-style clients: the lab key of a made-up visitor namespace.
fn key_for(app: &TestApp, n: u64) -> (String, String) {
    let namespace = format!("v{n:016x}");
    let key = app.state().lab_keys.issue(&namespace);
    (namespace, key)
}

fn learner_dir(app: &TestApp, namespace: &str) -> PathBuf {
    app.state().uploads.limits.dir.join(namespace)
}

/// Files left in a learner's folder (data, metadata, parts).
fn stored_names(app: &TestApp, namespace: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(learner_dir(app, namespace))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

enum Part<'a> {
    Field(&'a str, &'a str),
    File {
        field: &'a str,
        name: &'a str,
        content_type: &'a str,
        data: &'a [u8],
    },
}

const BOUNDARY: &str = "labdeck-test-boundary-7d1f";

fn multipart(parts: &[Part]) -> Vec<u8> {
    let mut body = Vec::new();
    for part in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match part {
            Part::Field(name, value) => {
                body.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
                        .as_bytes(),
                );
            }
            Part::File {
                field,
                name,
                content_type,
                data,
            } => {
                body.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: {content_type}\r\n\r\n"
                    )
                    .as_bytes(),
                );
                body.extend_from_slice(data);
                body.extend_from_slice(b"\r\n");
            }
        }
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn csv_file<'a>(name: &'a str, data: &'a [u8]) -> Part<'a> {
    Part::File {
        field: "file",
        name,
        content_type: "text/csv",
        data,
    }
}

async fn post_multipart(app: &TestApp, key: &str, parts: &[Part<'_>]) -> reqwest::Response {
    app.client
        .post(app.url(FILES))
        .header("X-Lab-Key", key)
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(parts))
        .send()
        .await
        .expect("POST")
}

async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}")),
    )
}

async fn assert_refused(response: reqwest::Response, status: u16, code: &str) -> Value {
    let (got, body) = json(response).await;
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 20),
        "a message a person can act on: {body}"
    );
    body
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client, for bodies sent slowly and answers read before the body is complete.

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .expect("connect")
}

fn request_head(method: &str, path: &str, headers: &[(&str, String)]) -> String {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head
}

/// Reads one response (head and a Content-Length body) within a deadline.
async fn read_response(stream: &mut TcpStream) -> RawResponse {
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break pos;
            }
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "connection closed before an answer");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = buf[head_end + 4..].to_vec();
        while body.len() < length {
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed mid-body");
            body.extend_from_slice(&chunk[..n]);
        }
        RawResponse {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
    .await
    .expect("an answer within 10 s")
}

/// After an answer with `Connection: close`, the server ends the connection.
async fn assert_closed(stream: &mut TcpStream) {
    let mut rest = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut rest))
        .await
        .expect("the server closes the connection");
    // EOF, or a reset if unread bytes were still in the server's buffer: either way, closed.
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "connection still open: {read:?}"
    );
}

// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_multipart_csv_is_stored_and_summarised_in_one_pass() {
    let app = TestApp::spawn().await;
    let (namespace, key) = key_for(&app, 1);
    let response = post_multipart(
        &app,
        &key,
        &[
            Part::Field("note", "hello"),
            csv_file("scores.csv", CSV.as_bytes()),
        ],
    )
    .await;
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    let file = &body["files"][0];
    assert_eq!(file["name"], "scores.csv");
    assert_eq!(file["field"], "file");
    assert_eq!(file["size"], CSV.len());
    assert_eq!(file["sha256"], sha256_hex(CSV.as_bytes()));
    assert_eq!(file["summary"]["rows"], 3);
    assert_eq!(
        file["summary"]["columns"],
        serde_json::json!(["id", "name", "amount"])
    );
    assert_eq!(body["fields"]["note"], "hello");

    let id = file["id"].as_str().expect("id");
    let stored = std::fs::read(learner_dir(&app, &namespace).join(format!("{id}.csv")))
        .expect("stored on disk");
    assert_eq!(stored, CSV.as_bytes());
    let (status, list) = json(
        app.client
            .get(app.url(FILES))
            .header("X-Lab-Key", &key)
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(list["files"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["files"][0]["id"], id);
}

#[tokio::test]
async fn several_files_and_fields_in_one_request() {
    let app = TestApp::spawn().await;
    let (_, key) = key_for(&app, 2);
    let second = "a,b\n1,2\n";
    let response = post_multipart(
        &app,
        &key,
        &[
            Part::Field("title", "two files"),
            csv_file("one.csv", CSV.as_bytes()),
            Part::File {
                field: "files",
                name: "two.txt",
                content_type: "text/plain",
                data: second.as_bytes(),
            },
        ],
    )
    .await;
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    let names: Vec<&str> = body["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|f| f["name"].as_str())
        .collect();
    assert_eq!(names, ["one.csv", "two.txt"]);
    assert_eq!(body["files"][1]["summary"]["rows"], 1);
    assert_eq!(body["fields"]["title"], "two files");
}

#[tokio::test]
async fn raw_csv_bodies_are_accepted_by_put_and_post() {
    let app = TestApp::spawn().await;
    let (_, key) = key_for(&app, 3);
    for method in [reqwest::Method::PUT, reqwest::Method::POST] {
        let response = app
            .client
            .request(method.clone(), app.url(&format!("{FILES}?name=raw.csv")))
            .header("X-Lab-Key", &key)
            .header("Content-Type", "text/csv")
            .body(CSV)
            .send()
            .await
            .expect("raw upload");
        let (status, body) = json(response).await;
        assert_eq!(status, 201, "{method}: {body}");
        assert_eq!(body["files"][0]["name"], "raw.csv");
        assert_eq!(body["files"][0]["field"], "raw");
        assert_eq!(body["files"][0]["summary"]["rows"], 3);
        assert_eq!(body["files"][0]["sha256"], sha256_hex(CSV.as_bytes()));
    }
    // Rows whose field count differs from the header's are reported with their line numbers.
    let response = app
        .client
        .put(app.url(&format!("{FILES}?name=ragged.csv")))
        .header("X-Lab-Key", &key)
        .header("Content-Type", "text/csv")
        .body("id,name\n1,a\n2\n3,c\n4,d,extra\n")
        .send()
        .await
        .expect("ragged upload");
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    let summary = &body["files"][0]["summary"];
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["invalidRows"], 2);
    assert_eq!(summary["firstInvalidLines"], serde_json::json!([3, 5]));
}

#[tokio::test]
async fn every_multipart_limit_answers_with_its_own_code_and_keeps_nothing() {
    let app = spawn_small().await;
    let (namespace, key) = key_for(&app, 4);
    let big = "x,y\n".repeat(20 * 1024); // 80 KiB > 64 KiB per file
    let small = CSV.as_bytes();

    let body = assert_refused(
        post_multipart(&app, &key, &[csv_file("big.csv", big.as_bytes())]).await,
        413,
        "LIMIT_FILE_SIZE",
    )
    .await;
    assert_eq!(body["limit"], 64 * 1024);
    assert_eq!(body["file"], "big.csv");

    assert_refused(
        post_multipart(
            &app,
            &key,
            &[
                csv_file("a.csv", small),
                csv_file("b.csv", small),
                csv_file("c.csv", small),
            ],
        )
        .await,
        413,
        "LIMIT_FILE_COUNT",
    )
    .await;

    assert_refused(
        post_multipart(
            &app,
            &key,
            &[
                Part::Field("a", "1"),
                Part::Field("b", "2"),
                Part::Field("c", "3"),
                csv_file("a.csv", small),
            ],
        )
        .await,
        413,
        "LIMIT_FIELD_COUNT",
    )
    .await;

    let long = "v".repeat(101);
    assert_refused(
        post_multipart(
            &app,
            &key,
            &[Part::Field("note", &long), csv_file("a.csv", small)],
        )
        .await,
        413,
        "LIMIT_FIELD_VALUE",
    )
    .await;

    let long_name = "n".repeat(101);
    assert_refused(
        post_multipart(
            &app,
            &key,
            &[Part::Field(&long_name, "1"), csv_file("a.csv", small)],
        )
        .await,
        413,
        "LIMIT_FIELD_KEY",
    )
    .await;

    assert_refused(
        post_multipart(
            &app,
            &key,
            &[
                Part::Field("a", "1"),
                Part::Field("b", "2"),
                csv_file("a.csv", small),
                csv_file("b.csv", small),
                csv_file("c.csv", small),
            ],
        )
        .await,
        413,
        "LIMIT_PART_COUNT",
    )
    .await;

    let body = assert_refused(
        post_multipart(
            &app,
            &key,
            &[Part::File {
                field: "avatar",
                name: "a.csv",
                content_type: "text/csv",
                data: small,
            }],
        )
        .await,
        400,
        "LIMIT_UNEXPECTED_FILE",
    )
    .await;
    assert_eq!(body["field"], "avatar");

    // The type filter: extension, declared type, and sniffed content.
    for (name, content_type, data) in [
        ("photo.png", "text/csv", small),
        ("a.csv", "image/png", small),
        ("nul.csv", "text/csv", b"a,b\n1,\0\n".as_slice()),
        ("latin1.csv", "text/csv", b"name\ncaf\xe9\n".as_slice()),
    ] {
        assert_refused(
            post_multipart(
                &app,
                &key,
                &[Part::File {
                    field: "file",
                    name,
                    content_type,
                    data,
                }],
            )
            .await,
            415,
            "LIMIT_FILE_TYPE",
        )
        .await;
    }

    // A refused request keeps none of its files, not even the ones that were complete.
    assert_refused(
        post_multipart(
            &app,
            &key,
            &[
                csv_file("fine.csv", small),
                csv_file("big.csv", big.as_bytes()),
            ],
        )
        .await,
        413,
        "LIMIT_FILE_SIZE",
    )
    .await;
    assert_eq!(stored_names(&app, &namespace), Vec::<String>::new());

    // No file at all, a wrong Content-Type, and a broken body.
    assert_refused(
        post_multipart(&app, &key, &[Part::Field("a", "1")]).await,
        400,
        "MALFORMED_MULTIPART",
    )
    .await;
    assert_refused(
        app.client
            .post(app.url(FILES))
            .header("X-Lab-Key", &key)
            .header("Content-Type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("POST"),
        415,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    assert_refused(
        app.client
            .post(app.url(FILES))
            .header("X-Lab-Key", &key)
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body("--nope\r\ngarbage")
            .send()
            .await
            .expect("POST"),
        400,
        "MALFORMED_MULTIPART",
    )
    .await;
}

#[tokio::test]
async fn the_whole_request_limit_applies_to_streams_without_a_length() {
    let app = TestApp::spawn_with(TestOptions {
        upload: UploadArgs {
            max_files: 10,
            max_parts: 20,
            ..small_limits()
        },
        ..TestOptions::default()
    })
    .await;
    let (namespace, key) = key_for(&app, 5);
    // Five 60 KiB files: each under the file limit, 300 KiB together > 256 KiB, sent chunked
    // (no Content-Length) so only counting while streaming can catch it.
    let chunk = "y\n".repeat(30 * 1024);
    let mut stream = connect(&app).await;
    let head = request_head(
        "POST",
        FILES,
        &[
            ("X-Lab-Key", key.clone()),
            (
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
            ("Transfer-Encoding", "chunked".into()),
        ],
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let parts: Vec<Part> = (0..5)
        .map(|_| csv_file("part.csv", chunk.as_bytes()))
        .collect();
    let body = multipart(&parts);
    // Send chunk-encoded pieces until the server answers (it must, before the end).
    let mut answered = None;
    for piece in body.chunks(16 * 1024) {
        let framed = [format!("{:x}\r\n", piece.len()).as_bytes(), piece, b"\r\n"].concat();
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        let mut peek = [0u8; 1];
        if let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_millis(20), stream.peek(&mut peek)).await
            && n > 0
        {
            answered = Some(read_response(&mut stream).await);
            break;
        }
    }
    let response = match answered {
        Some(response) => response,
        None => read_response(&mut stream).await,
    };
    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(response.json()["error"], "LIMIT_REQUEST_SIZE");
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(stored_names(&app, &namespace), Vec::<String>::new());
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_any_body_is_sent() {
    let app = spawn_small().await;
    let (_, key) = key_for(&app, 6);
    let mut stream = connect(&app).await;
    // A 10 GB upload announced with Expect: 100-continue: the server must answer 413 without
    // asking for (or waiting for) one byte of it.
    let head = request_head(
        "POST",
        FILES,
        &[
            ("X-Lab-Key", key.clone()),
            (
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
            ("Content-Length", "10000000000".into()),
            ("Expect", "100-continue".into()),
        ],
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let response = read_response(&mut stream).await;
    assert_eq!(
        response.status, 413,
        "no 100 Continue first: {}",
        response.body
    );
    assert_eq!(response.json()["error"], "LIMIT_REQUEST_SIZE");
    assert_eq!(response.json()["limit"], 256 * 1024);
    assert_closed(&mut stream).await;

    // The same for a raw body over the per-file limit.
    let mut stream = connect(&app).await;
    let head = request_head(
        "PUT",
        &format!("{FILES}?name=huge.csv"),
        &[
            ("X-Lab-Key", key.clone()),
            ("Content-Type", "text/csv".into()),
            ("Content-Length", "10000000000".into()),
        ],
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.json()["error"], "LIMIT_FILE_SIZE");
}

#[tokio::test]
async fn a_slow_client_gets_its_413_mid_body_without_sending_the_rest() {
    let app = spawn_small().await;
    let (namespace, key) = key_for(&app, 7);
    // 200 KiB declared (under the 256 KiB request limit) for one file that exceeds the 64 KiB
    // file limit. Send the headers and 100 KiB, then stop and wait: the answer must come now.
    let body = multipart(&[csv_file("slow.csv", "z\n".repeat(100 * 1024).as_bytes())]);
    let mut stream = connect(&app).await;
    let head = request_head(
        "POST",
        FILES,
        &[
            ("X-Lab-Key", key.clone()),
            (
                "Content-Type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            ),
            ("Content-Length", body.len().to_string()),
        ],
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    for piece in body[..100 * 1024].chunks(10 * 1024) {
        // The answer may come (and the server stop reading) before all 100 KiB are out.
        if stream.write_all(piece).await.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let response = read_response(&mut stream).await;
    assert_eq!(response.status, 413, "{}", response.body);
    assert_eq!(response.json()["error"], "LIMIT_FILE_SIZE");
    assert_eq!(response.header("connection"), Some("close"));
    assert_closed(&mut stream).await;
    // The part file was removed once the answer went out.
    assert_eq!(stored_names(&app, &namespace), Vec::<String>::new());

    // And a client that just goes away mid-upload leaves nothing either.
    let mut stream = connect(&app).await;
    let head = request_head(
        "PUT",
        &format!("{FILES}?name=gone.csv"),
        &[
            ("X-Lab-Key", key.clone()),
            ("Content-Type", "text/csv".into()),
            ("Content-Length", "60000".into()),
        ],
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all("a,b\n".repeat(2000).as_bytes())
        .await
        .expect("some body");
    wait_for(&app, &namespace, |s| {
        s["uploads"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    drop(stream);
    wait_for(&app, &namespace, |s| s["uploads_in_flight"] == 0).await;
    assert_eq!(stored_names(&app, &namespace), Vec::<String>::new());
}

/// Polls the learner's status until `done` holds (at most 5 s).
async fn wait_for(app: &TestApp, namespace: &str, done: impl Fn(&Value) -> bool) {
    let key = app.state().lab_keys.issue(namespace);
    for _ in 0..250 {
        let (_, status) = json(
            app.client
                .get(app.url("/labs/upload/api/status"))
                .header("X-Lab-Key", &key)
                .send()
                .await
                .expect("status"),
        )
        .await;
        if done(&status) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the server never reached the expected state");
}

#[tokio::test]
async fn uploads_beyond_the_cap_get_503_with_retry_after_and_progress_is_live() {
    let app = spawn_small().await; // 2 per learner, 3 per server
    let (a_ns, a_key) = key_for(&app, 8);
    let (_, b_key) = key_for(&app, 9);
    let body = "n,v\n".repeat(4000); // 16,000 bytes
    let open_upload = |key: String| {
        let app = app.clone();
        let body = body.clone();
        async move {
            let mut stream = connect(&app).await;
            let head = request_head(
                "PUT",
                &format!("{FILES}?name=slow.csv"),
                &[
                    ("X-Lab-Key", key),
                    ("Content-Type", "text/csv".into()),
                    ("Content-Length", body.len().to_string()),
                ],
            );
            stream.write_all(head.as_bytes()).await.expect("head");
            stream
                .write_all(&body.as_bytes()[..8000])
                .await
                .expect("first half");
            stream
        }
    };
    let mut a1 = open_upload(a_key.clone()).await;
    let mut a2 = open_upload(a_key.clone()).await;
    wait_for(&app, &a_ns, |s| {
        s["uploads"].as_array().is_some_and(|u| {
            u.len() == 2
                && u.iter()
                    .all(|p| p["bytes"] == 8000 && p["rows"].as_u64() >= Some(1999))
        })
    })
    .await;

    let refused = app
        .client
        .put(app.url(&format!("{FILES}?name=third.csv")))
        .header("X-Lab-Key", &a_key)
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("third");
    assert_eq!(refused.headers()["retry-after"], "5");
    let body_json = assert_refused(refused, 503, "TOO_MANY_UPLOADS").await;
    assert_eq!(body_json["scope"], "learner");

    // Another learner still gets the server's last place, then the server is full.
    let mut b1 = open_upload(b_key.clone()).await;
    wait_for(&app, &a_ns, |s| s["uploads_in_flight"] == 3).await;
    let refused = app
        .client
        .put(app.url(&format!("{FILES}?name=fourth.csv")))
        .header("X-Lab-Key", &b_key)
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("fourth");
    let body_json = assert_refused(refused, 503, "TOO_MANY_UPLOADS").await;
    assert_eq!(body_json["scope"], "server");

    // The open uploads finish normally, and the places are free again.
    for stream in [&mut a1, &mut a2, &mut b1] {
        stream
            .write_all(&body.as_bytes()[8000..])
            .await
            .expect("second half");
        let response = read_response(stream).await;
        assert_eq!(response.status, 201, "{}", response.body);
        assert_eq!(response.json()["files"][0]["summary"]["rows"], 3999);
    }
    wait_for(&app, &a_ns, |s| s["uploads_in_flight"] == 0).await;
}

#[tokio::test]
async fn learners_cannot_see_read_or_delete_each_others_files() {
    let app = TestApp::spawn().await;
    let (_, a_key) = key_for(&app, 10);
    let (_, b_key) = key_for(&app, 11);
    let (_, body) =
        json(post_multipart(&app, &a_key, &[csv_file("mine.csv", CSV.as_bytes())]).await).await;
    let id = body["files"][0]["id"].as_str().expect("id").to_string();

    let (_, list) = json(
        app.client
            .get(app.url(FILES))
            .header("X-Lab-Key", &b_key)
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(list["files"], serde_json::json!([]));
    for request in [
        app.client.get(app.url(&format!("{FILES}/{id}"))),
        app.client.get(app.url(&format!("{FILES}/{id}/link"))),
        app.client.delete(app.url(&format!("{FILES}/{id}"))),
    ] {
        let response = request.header("X-Lab-Key", &b_key).send().await.expect("B");
        assert_refused(response, 404, "NOT_FOUND").await;
    }
    // A's file is still there for A, and A can delete it.
    let response = app
        .client
        .delete(app.url(&format!("{FILES}/{id}")))
        .header("X-Lab-Key", &a_key)
        .send()
        .await
        .expect("A deletes");
    assert_eq!(response.status(), 204);

    // Browsers: cookies identify the learner, and unsafe requests need the CSRF token.
    let browser = app.other_client();
    let token = browser.csrf_token().await;
    let refused = browser
        .client
        .put(browser.url(&format!("{FILES}?name=x.csv")))
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("no token");
    assert_refused(refused, 403, "CSRF_FAILED").await;
    let accepted = browser
        .client
        .put(browser.url(&format!("{FILES}?name=x.csv")))
        .header("Content-Type", "text/csv")
        .header("X-CSRF-Token", &token)
        .body(CSV)
        .send()
        .await
        .expect("token");
    assert_eq!(accepted.status(), 201);
    let forged = app
        .client
        .get(app.url(FILES))
        .header("X-Lab-Key", "v0000000000000001.forged")
        .send()
        .await
        .expect("forged");
    assert_refused(forged, 401, "INVALID_LAB_KEY").await;
}

#[tokio::test]
async fn the_plain_form_works_without_javascript() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/labs/upload").await;
    let token = crate::common::attr(&html, "#ul-form input[name=csrf_token]", "value");
    assert!(!token.is_empty());
    let body = multipart(&[
        Part::Field("csrf_token", &token),
        Part::Field("note", ""),
        csv_file("form.csv", CSV.as_bytes()),
    ]);
    let response = app
        .client
        .post(app.url(FILES))
        .header("Accept", "text/html,application/xhtml+xml")
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body.clone())
        .send()
        .await
        .expect("form post");
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    assert!(location.starts_with("/labs/upload?uploaded="), "{location}");
    let page = app.get_html(&location).await;
    let rows = crate::common::text(&page, "[data-summary-rows]");
    assert!(rows.contains("3 rows"), "{rows}");
    assert_eq!(select(&page, "table[data-files] tbody tr.is-new").len(), 1);

    // Without the token (or with a wrong one) nothing is stored.
    let forged = multipart(&[
        Part::Field("csrf_token", "wrong"),
        csv_file("form.csv", CSV.as_bytes()),
    ]);
    let refused = app
        .client
        .post(app.url(FILES))
        .header(
            "Content-Type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(forged)
        .send()
        .await
        .expect("forged form");
    assert_refused(refused, 403, "CSRF_FAILED").await;
    let page = app.get_html("/labs/upload").await;
    assert_eq!(select(&page, "table[data-files] tbody tr").len(), 1);

    // Delete through the plain form.
    let id = location
        .trim_start_matches("/labs/upload?uploaded=")
        .trim_end_matches("#files")
        .to_string();
    let response = app
        .post_form(&format!("/labs/upload/files/{id}/delete"), &[])
        .await;
    assert_eq!(response.status(), 303);
    let page = app.get_html("/labs/upload").await;
    assert_eq!(select(&page, "[data-no-files]").len(), 1);
}

#[tokio::test]
async fn the_buffering_endpoint_is_capped_low() {
    let app = spawn_small().await; // 32 KiB
    let (_, key) = key_for(&app, 12);
    let response = app
        .client
        .post(app.url("/labs/upload/api/buffered?name=b.csv"))
        .header("X-Lab-Key", &key)
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("buffered");
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["files"][0]["summary"]["rows"], 3);
    assert_eq!(body["files"][0]["field"], "buffered");
    let response = app
        .client
        .post(app.url("/labs/upload/api/buffered?name=b.csv"))
        .header("X-Lab-Key", &key)
        .header("Content-Type", "text/csv")
        .body("q\n".repeat(20 * 1024))
        .send()
        .await
        .expect("too big");
    let body = assert_refused(response, 413, "LIMIT_REQUEST_SIZE").await;
    assert_eq!(body["limit"], 32 * 1024);
}

// ---------------------------------------------------------------------------------------------
// Presigned uploads and signed downloads

async fn presign(app: &TestApp, key: &str, request: Value) -> Value {
    let (status, body) = json(
        app.client
            .post(app.url("/labs/upload/api/presign"))
            .header("X-Lab-Key", key)
            .json(&request)
            .send()
            .await
            .expect("presign"),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// A client with no cookies at all: the signed URL is the only credential.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

#[tokio::test]
async fn presigned_uploads_work_without_credentials_and_refuse_tampering() {
    let app = TestApp::spawn().await;
    let (namespace, key) = key_for(&app, 13);
    let grant = presign(
        &app,
        &key,
        serde_json::json!({ "name": "direct.csv", "content_type": "text/csv", "max_bytes": 1000 }),
    )
    .await;
    let url = grant["url"].as_str().expect("url").to_string();
    assert!(
        url.contains(&format!("/labs/upload/direct/{namespace}/")),
        "{url}"
    );
    let bare = bare_client();

    // Wrong type, too large, tampered size limit, another learner's prefix.
    let refused = bare
        .put(&url)
        .header("Content-Type", "text/plain")
        .body(CSV)
        .send()
        .await
        .expect("wrong type");
    assert_refused(refused, 415, "UNSUPPORTED_MEDIA_TYPE").await;
    let refused = bare
        .put(&url)
        .header("Content-Type", "text/csv")
        .body("w\n".repeat(600))
        .send()
        .await
        .expect("too large");
    assert_refused(refused, 413, "LIMIT_FILE_SIZE").await;
    let refused = bare
        .put(url.replace("max=1000", "max=100000"))
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("tampered");
    assert_refused(refused, 403, "BAD_SIGNATURE").await;
    let (other_ns, _) = key_for(&app, 14);
    let refused = bare
        .put(url.replace(&namespace, &other_ns))
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("other prefix");
    assert_refused(refused, 403, "BAD_SIGNATURE").await;

    let response = bare
        .put(&url)
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("direct upload");
    let (status, body) = json(response).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["files"][0]["name"], "direct.csv");
    assert_eq!(body["files"][0]["summary"]["rows"], 3);
    // It is the learner's file, and the URL cannot be used again.
    let (_, list) = json(
        app.client
            .get(app.url(FILES))
            .header("X-Lab-Key", &key)
            .send()
            .await
            .expect("list"),
    )
    .await;
    assert_eq!(list["files"][0]["field"], "presigned");
    let again = bare
        .put(&url)
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("reuse");
    assert_refused(again, 403, "BAD_SIGNATURE").await;
}

#[tokio::test]
async fn signed_urls_expire_and_downloads_are_bound_to_their_owner() {
    let app = TestApp::spawn_with(TestOptions {
        upload: UploadArgs {
            url_ttl_secs: 1,
            ..UploadArgs::default()
        },
        ..TestOptions::default()
    })
    .await;
    let (_, a_key) = key_for(&app, 15);
    let (_, b_key) = key_for(&app, 16);
    let (_, a) =
        json(post_multipart(&app, &a_key, &[csv_file("a.csv", CSV.as_bytes())]).await).await;
    let (_, b) = json(post_multipart(&app, &b_key, &[csv_file("b.csv", b"q\n1\n")]).await).await;
    let a_id = a["files"][0]["id"].as_str().expect("id");
    let b_id = b["files"][0]["id"].as_str().expect("id");
    let (_, link) = json(
        app.client
            .get(app.url(&format!("{FILES}/{a_id}/link")))
            .header("X-Lab-Key", &a_key)
            .send()
            .await
            .expect("link"),
    )
    .await;
    let url = link["url"].as_str().expect("url").to_string();
    let bare = bare_client();
    let response = bare.get(&url).send().await.expect("download");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .expect("ascii")
            .contains("a.csv")
    );
    assert_eq!(response.text().await.expect("body"), CSV);

    // A's signature does not open B's file, nor a changed expiry.
    let refused = bare
        .get(url.replace(a_id, b_id))
        .send()
        .await
        .expect("other file");
    assert_refused(refused, 403, "BAD_SIGNATURE").await;
    let expires = link["expires"].as_i64().expect("expires");
    let refused = bare
        .get(url.replace(
            &format!("expires={expires}"),
            &format!("expires={}", expires + 3600),
        ))
        .send()
        .await
        .expect("longer");
    assert_refused(refused, 403, "BAD_SIGNATURE").await;

    // A presigned upload URL issued now expires with the same TTL.
    let grant = presign(&app, &a_key, serde_json::json!({ "name": "late.csv" })).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let refused = bare.get(&url).send().await.expect("expired download");
    assert_refused(refused, 403, "URL_EXPIRED").await;
    let refused = bare
        .put(grant["url"].as_str().expect("url"))
        .header("Content-Type", "text/csv")
        .body(CSV)
        .send()
        .await
        .expect("expired upload");
    assert_refused(refused, 403, "URL_EXPIRED").await;
}

// ---------------------------------------------------------------------------------------------
// tus

async fn tus_create(app: &TestApp, key: &str, length: usize, name: &str) -> String {
    use base64::Engine;
    let response = app
        .client
        .post(app.url("/labs/upload/tus"))
        .header("X-Lab-Key", key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", length.to_string())
        .header(
            "Upload-Metadata",
            format!(
                "filename {},filetype {}",
                base64::engine::general_purpose::STANDARD.encode(name),
                base64::engine::general_purpose::STANDARD.encode("text/csv")
            ),
        )
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 201);
    assert!(response.headers().contains_key("upload-expires"));
    response.headers()["location"]
        .to_str()
        .expect("location")
        .to_string()
}

async fn tus_patch(
    app: &TestApp,
    key: &str,
    url: &str,
    offset: usize,
    data: &[u8],
    checksum: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .client
        .patch(url)
        .header("X-Lab-Key", key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Offset", offset.to_string())
        .header("Content-Type", "application/offset+octet-stream");
    if let Some(checksum) = checksum {
        request = request.header("Upload-Checksum", checksum);
    }
    request.body(data.to_vec()).send().await.expect("PATCH")
}

async fn tus_offset(app: &TestApp, key: &str, url: &str) -> u64 {
    let response = app
        .client
        .head(url)
        .header("X-Lab-Key", key)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.headers()["upload-offset"]
        .to_str()
        .expect("offset")
        .parse()
        .expect("number")
}

#[tokio::test]
async fn a_tus_upload_resumes_where_it_stopped_and_is_summarised() {
    let app = TestApp::spawn().await;
    let (_, key) = key_for(&app, 17);
    let options = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/labs/upload/tus"))
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(options.status(), 204);
    assert_eq!(options.headers()["tus-version"], "1.0.0");
    let extensions = options.headers()["tus-extension"].to_str().expect("ascii");
    for extension in ["creation", "termination", "expiration", "checksum"] {
        assert!(extensions.contains(extension), "{extensions}");
    }
    assert!(options.headers().contains_key("tus-max-size"));

    let data: String = (0..2000)
        .map(|i| format!("{i},name {i},{}\n", i * 2))
        .collect();
    let data = format!("id,name,double\n{data}");
    let bytes = data.as_bytes();
    let url = tus_create(&app, &key, bytes.len(), "resumed.csv").await;
    assert_eq!(tus_offset(&app, &key, &url).await, 0);

    // The first part (cut in the middle of a row), then the client "loses" its place.
    let cut = bytes.len() / 3 + 7;
    let response = tus_patch(&app, &key, &url, 0, &bytes[..cut], None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["upload-offset"],
        cut.to_string().as_str()
    );
    // A PATCH at the wrong offset is refused with the server's offset.
    let conflict = tus_patch(&app, &key, &url, 5, &bytes[5..cut], None).await;
    let body = assert_refused(conflict, 409, "OFFSET_MISMATCH").await;
    assert_eq!(body["offset"], cut);
    // A chunk whose checksum does not match is discarded.
    let wrong = tus_patch(
        &app,
        &key,
        &url,
        cut,
        &bytes[cut..cut + 100],
        Some("sha1 AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into()),
    )
    .await;
    assert_eq!(wrong.status(), 460);
    assert_eq!(tus_offset(&app, &key, &url).await, cut as u64);

    // Resume from HEAD's offset with a correct checksum on the next chunk, then the rest.
    let offset = tus_offset(&app, &key, &url).await as usize;
    let middle = offset + 1000;
    let sha1 = {
        use base64::Engine;
        use sha1::{Digest, Sha1};
        base64::engine::general_purpose::STANDARD.encode(Sha1::digest(&bytes[offset..middle]))
    };
    let response = tus_patch(
        &app,
        &key,
        &url,
        offset,
        &bytes[offset..middle],
        Some(format!("sha1 {sha1}")),
    )
    .await;
    assert_eq!(response.status(), 204);
    let response = tus_patch(&app, &key, &url, middle, &bytes[middle..], None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(
        response.headers()["upload-offset"],
        bytes.len().to_string().as_str()
    );

    let id = url.rsplit('/').next().expect("id");
    let (status, file) = json(
        app.client
            .get(app.url(&format!("{FILES}/{id}")))
            .header("X-Lab-Key", &key)
            .send()
            .await
            .expect("file"),
    )
    .await;
    assert_eq!(status, 200, "{file}");
    assert_eq!(file["name"], "resumed.csv");
    assert_eq!(file["field"], "tus");
    assert_eq!(file["size"], bytes.len());
    assert_eq!(file["sha256"], sha256_hex(bytes));
    assert_eq!(file["summary"]["rows"], 2000);
    // The finished upload is no longer a tus upload.
    let gone = app
        .client
        .head(&url)
        .header("X-Lab-Key", &key)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("HEAD");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn tus_termination_length_and_version_checks() {
    let app = spawn_small().await;
    let (_, key) = key_for(&app, 18);
    let (_, other) = key_for(&app, 19);
    let url = tus_create(&app, &key, 100, "t.csv").await;
    // Someone else cannot see or end it.
    let response = app
        .client
        .delete(&url)
        .header("X-Lab-Key", &other)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 404);
    let response = app
        .client
        .delete(&url)
        .header("X-Lab-Key", &key)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .await
        .expect("DELETE");
    assert_eq!(response.status(), 204);
    let response = tus_patch(&app, &key, &url, 0, b"a,b\n", None).await;
    assert_eq!(response.status(), 404);

    // Over the file limit at creation; wrong version; more bytes than Upload-Length.
    let response = app
        .client
        .post(app.url("/labs/upload/tus"))
        .header("X-Lab-Key", &key)
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", (1024 * 1024).to_string())
        .send()
        .await
        .expect("create");
    assert_refused(response, 413, "LIMIT_FILE_SIZE").await;
    let response = app
        .client
        .post(app.url("/labs/upload/tus"))
        .header("X-Lab-Key", &key)
        .header("Tus-Resumable", "0.2.2")
        .header("Upload-Length", "10")
        .send()
        .await
        .expect("create");
    assert_eq!(response.status(), 412);
    assert_eq!(response.headers()["tus-version"], "1.0.0");
    let url = tus_create(&app, &key, 4, "short.csv").await;
    let response = tus_patch(&app, &key, &url, 0, b"a,b\n1,2\n", None).await;
    assert_refused(response, 413, "LIMIT_FILE_SIZE").await;
}
