//! Lab challenges over HTTP: submissions are graded in the sandbox pool, streamed over SSE,
//! stored per learner, rate limited, and a busy grader answers instead of queueing forever.

use std::time::Duration;

use serde_json::Value;

use crate::common::{TestApp, TestOptions, attr, manifest_dir, select, text};

fn reference() -> String {
    std::fs::read_to_string(manifest_dir().join("labs/rate-limiter/reference.js"))
        .expect("reference")
}

const ENDLESS: &str = "function createLimiter() { while (true) {} }";

/// Posts a solution the way htmx does and returns the submission id from the fragment.
async fn submit(app: &TestApp, source: &str, mode: &str) -> i64 {
    submit_as(app, source, mode, "javascript").await
}

async fn submit_as(app: &TestApp, source: &str, mode: &str, language: &str) -> i64 {
    let response = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", source), ("mode", mode), ("language", language)],
        )
        .await;
    assert_eq!(response.status(), 200);
    let fragment = scraper::Html::parse_fragment(&response.text().await.expect("body"));
    let events = attr(&fragment, ".submission", "data-events");
    events
        .split("/events")
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no submission id in {events}"))
}

async fn follow(app: &TestApp, id: i64) -> (Vec<String>, String) {
    crate::common::follow_submission(app, "rate-limiter", id).await
}

#[tokio::test]
async fn visitors_see_the_challenge_with_the_starter_and_public_tests() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/labs/rate-limiter/challenge").await;
    assert_eq!(text(&html, "h1"), "Sliding-log rate limiter");
    assert!(text(&html, "textarea#source").contains("function createLimiter"));
    assert_eq!(select(&html, ".public-test").len(), 3);
    assert_eq!(
        select(&html, ".solution-actions button[disabled]").len(),
        2,
        "log in to run code"
    );
    assert_eq!(app.get("/labs/nope/challenge").await.status(), 404);
    let lesson = app.get_html("/lessons/sliding-window-limiter").await;
    // The lesson links to its (now available) lab, whose page links to this challenge.
    assert_eq!(attr(&lesson, ".lab-link a", "href"), "/labs/rate-limiter");
}

#[tokio::test]
async fn a_submission_streams_its_results_and_a_full_pass_solves_the_lab() {
    let app = TestApp::spawn().await;
    app.sign_up("sol@example.com").await;
    let id = submit(&app, &reference(), "submit").await;
    let (results, summary) = follow(&app, id).await;
    assert_eq!(results.len(), 38, "public + hidden + random");
    assert!(results.iter().all(|r| r.contains("is-pass")));
    let summary = scraper::Html::parse_fragment(&summary);
    let words = text(&summary, ".summary")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        words.starts_with("Accepted — 38/38 tests passed, score 100"),
        "{words}"
    );
    assert!(words.ends_with("lab solved!"), "{words}");

    let (verdict, score): (String, i32) =
        sqlx::query_as("SELECT verdict, score FROM submissions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db())
            .await
            .expect("row");
    assert_eq!((verdict.as_str(), score), ("accepted", 100));
    let dashboard = app.get_html("/dashboard").await;
    assert_eq!(text(&dashboard, "#stat-labs"), "1");
    assert!(text(&dashboard, "#labs-solved").contains("Sliding-log rate limiter"));
    let page = app.get_html("/labs/rate-limiter/challenge").await;
    assert!(text(&page, "h1").contains("Solved"));
    assert_eq!(select(&page, ".attempt.verdict-accepted").len(), 1);
}

#[tokio::test]
async fn hidden_tests_say_what_failed_without_their_data_and_random_traces_are_shrunk() {
    let app = TestApp::spawn().await;
    app.sign_up("bug@example.com").await;
    let off_by_one = reference().replace(
        "log[expired] <= now - windowMs",
        "log[expired] < now - windowMs",
    );
    let id = submit(&app, &off_by_one, "submit").await;
    let (results, _) = follow(&app, id).await;
    let failed: Vec<scraper::Html> = results
        .iter()
        .filter(|r| r.contains("is-fail"))
        .map(|r| scraper::Html::parse_fragment(r))
        .collect();
    assert!(!failed.is_empty());
    let mut shrunk = 0;
    for result in &failed {
        let kind = text(result, ".badge");
        if kind == "hidden" {
            assert!(
                select(result, "pre.json").is_empty(),
                "hidden data never leaves the server"
            );
            assert_eq!(
                text(result, ".test-message"),
                "Wrong answer: your answer differs from the reference (hidden tests do not show their data)"
            );
            assert!(!result.html().contains(" ms<"), "no timing side channel");
        }
        if kind == "random" && !select(result, "pre.json").is_empty() {
            shrunk += 1;
            let trace: Value = serde_json::from_str(&text(result, "pre.json")).expect("trace json");
            assert!(
                trace["hits"].as_array().expect("hits").len() <= 4,
                "shrunk: {trace}"
            );
        }
    }
    assert_eq!(
        shrunk, 1,
        "only the first failing random trace is shrunk (bounded cost)"
    );
    let (verdict,): (String,) = sqlx::query_as("SELECT verdict FROM submissions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db())
        .await
        .expect("row");
    assert_eq!(verdict, "wrong_answer");
    let (solved,): (i64,) = sqlx::query_as("SELECT count(*) FROM lab_solves")
        .fetch_one(&app.db())
        .await
        .expect("count");
    assert_eq!(solved, 0);
}

#[tokio::test]
async fn verdicts_and_fuel_are_the_same_on_every_run() {
    let app = TestApp::spawn().await;
    app.sign_up("det@example.com").await;
    let a = submit(&app, &reference(), "run").await;
    follow(&app, a).await;
    let b = submit(&app, &reference(), "run").await;
    follow(&app, b).await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT verdict, fuel_used FROM submissions ORDER BY id")
            .fetch_all(&app.db())
            .await
            .expect("rows");
    assert_eq!(rows[0], rows[1]);
    assert!(rows[0].1 > 0);
}

#[tokio::test]
async fn without_javascript_a_submission_redirects_to_its_result_page() {
    let app = TestApp::spawn().await;
    app.sign_up("nojs@example.com").await;
    let response = app
        .post_form(
            "/labs/rate-limiter/submissions",
            &[("source", &reference()), ("mode", "run")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_string();
    assert!(location.starts_with("/labs/rate-limiter/submissions/"));
    let id: i64 = location
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .expect("id");
    follow(&app, id).await;
    let page = app.get_html(&location).await;
    assert_eq!(select(&page, ".test-result.is-pass").len(), 3);
    assert!(text(&page, "pre.submitted-source").contains("createLimiter"));
}

#[tokio::test]
async fn learners_cannot_see_each_others_submissions() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@example.com").await;
    let id = submit(&app, &reference(), "run").await;
    let other = app.other_client();
    other.sign_up("snoop@example.com").await;
    assert_eq!(
        other
            .get(&format!("/labs/rate-limiter/submissions/{id}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        other
            .get(&format!("/labs/rate-limiter/submissions/{id}/events"))
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn bad_submissions_get_clear_errors() {
    let app = TestApp::spawn().await;
    let visitor = app
        .post_form("/labs/rate-limiter/submissions", &[("source", "x")])
        .await;
    assert_eq!(visitor.status(), 303);
    assert!(
        visitor.headers()["location"]
            .to_str()
            .expect("ascii")
            .starts_with("/login")
    );
    app.sign_up("err@example.com").await;
    let empty = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", "  "), ("mode", "run")],
        )
        .await;
    assert_eq!(empty.status(), 400);
    assert_eq!(empty.headers()["hx-retarget"], "#toasts");
    assert!(
        empty
            .text()
            .await
            .expect("body")
            .contains("the editor is empty")
    );
    let huge = "x".repeat(65 * 1024);
    let response = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", &huge), ("mode", "run")],
        )
        .await;
    assert_eq!(response.status(), 400);
    let mode = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", "x"), ("mode", "everything")],
        )
        .await;
    assert_eq!(mode.status(), 400);
}

#[tokio::test]
async fn submissions_are_rate_limited_per_learner() {
    let app = TestApp::spawn().await;
    app.sign_up("rush@example.com").await;
    for _ in 0..12 {
        let id = submit(&app, "function createLimiter() { return null; }", "run").await;
        follow(&app, id).await;
    }
    let response = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", "function createLimiter() {}"), ("mode", "run")],
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "20");
    let other = app.other_client();
    other.sign_up("calm@example.com").await;
    submit(&other, "function createLimiter() {}", "run").await;
}

#[tokio::test]
async fn a_busy_grader_says_when_to_retry_and_the_site_keeps_serving() {
    let app = TestApp::spawn_with(TestOptions {
        grader_threads: 1,
        grader_queue: 0,
        ..Default::default()
    })
    .await;
    app.sign_up("busy@example.com").await;
    // The only worker takes a job only while idle; it may not be waiting yet right after start.
    let mut hostile = None;
    for _ in 0..100 {
        let response = app
            .post_htmx(
                "/labs/rate-limiter/submissions",
                &[("source", ENDLESS), ("mode", "run")],
            )
            .await;
        if response.status() == 200 {
            let fragment = scraper::Html::parse_fragment(&response.text().await.expect("body"));
            let events = attr(&fragment, ".submission", "data-events");
            hostile = events
                .split("/events")
                .next()
                .and_then(|p| p.rsplit('/').next())
                .and_then(|id| id.parse::<i64>().ok());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let hostile = hostile.expect("the grader took the first submission");
    // While the only grader thread burns its CPU budget, pages still answer at once…
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/lessons/event-loop").await.status(), 200);
    // …and a second submission is refused with a retry hint instead of waiting in line.
    let response = app
        .post_htmx(
            "/labs/rate-limiter/submissions",
            &[("source", &reference()), ("mode", "run")],
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "2");
    let (results, _) = follow(&app, hostile).await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.contains("data-verdict=\"time_limit\""))
    );
}

#[tokio::test]
async fn drafts_are_saved_and_restored() {
    let app = TestApp::spawn().await;
    app.sign_up("draft@example.com").await;
    let response = app
        .post_htmx(
            "/labs/rate-limiter/draft",
            &[("source", "// half-way there\nfunction createLimiter() {}")],
        )
        .await;
    assert_eq!(response.status(), 204);
    let page = app.get_html("/labs/rate-limiter/challenge").await;
    assert!(text(&page, "textarea#source").starts_with("// half-way there"));
}

#[tokio::test]
async fn webassembly_solutions_are_graded_too() {
    let app = TestApp::spawn().await;
    app.sign_up("wasm@example.com").await;
    // Prints `[]` whatever the input: a valid answer shape, but wrong.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 16) "[]")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 2))
        (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;
    let id = submit_as(&app, wat, "run", "wasm").await;
    let (results, summary) = follow(&app, id).await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.contains("data-verdict=\"wrong_answer\""))
    );
    assert!(summary.contains("Wrong answer"));
    let broken = submit_as(&app, "(module (func $oops", "run", "wasm").await;
    let (results, _) = follow(&app, broken).await;
    assert!(
        results
            .iter()
            .all(|r| r.contains("data-verdict=\"compile_error\""))
    );
}

#[tokio::test]
async fn binary_webassembly_can_be_submitted_as_base64() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    app.sign_up("bin@example.com").await;
    // The binary encoding of (module (func (export "_start") (loop (br 0)))).
    let binary: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
        0x03, 0x02, 0x01, 0x00, // function section
        0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00,
        0x00, // export _start
        0x0a, 0x09, 0x01, 0x07, 0x00, 0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b, // loop br 0 end end
    ];
    let encoded = base64::engine::general_purpose::STANDARD.encode(binary);
    assert_eq!(labdeck::grading::wasm_bytes(&encoded), binary);
    let id = submit_as(&app, &encoded, "run", "wasm").await;
    let (results, _) = follow(&app, id).await;
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r.contains("data-verdict=\"time_limit\"")),
        "{results:?}"
    );
}

#[tokio::test]
async fn nul_characters_in_output_never_leave_a_submission_pending() {
    let app = TestApp::spawn().await;
    app.sign_up("nul@example.com").await;
    let source = "console.log('a\\0b'); function createLimiter() { throw new Error('x\\0y'); }";
    let id = submit(&app, source, "run").await;
    let (results, summary) = follow(&app, id).await;
    assert_eq!(results.len(), 3);
    assert!(summary.contains("Runtime error"), "{summary}");
    let (verdict,): (String,) = sqlx::query_as("SELECT verdict FROM submissions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db())
        .await
        .expect("row");
    assert_eq!(verdict, "runtime_error");
}

#[tokio::test]
async fn a_submission_left_pending_by_a_crash_does_not_block_the_learner() {
    let app = TestApp::spawn().await;
    app.sign_up("crash@example.com").await;
    sqlx::query(
        "INSERT INTO submissions (user_id, lab_id, mode, language, source, created_at)
         SELECT id, 'rate-limiter', 'run', 'javascript', 'x', now() - interval '20 minutes' FROM users",
    )
    .execute(&app.db())
    .await
    .expect("orphan row");
    let id = submit(&app, &reference(), "run").await;
    let (results, _) = follow(&app, id).await;
    assert_eq!(results.len(), 3);
}
