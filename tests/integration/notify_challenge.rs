//! The notifications lab's graded challenge over HTTP: the generic challenge page shows it, the
//! reference is accepted, the starter gets expected vs actual, and a consumer without dedupe
//! fails the hidden duplicate storm without learning its data.

use serde_json::Value;

use crate::common::{TestApp, attr, manifest_dir, select, text};

const LAB: &str = "notifications";

fn lab_file(name: &str) -> String {
    std::fs::read_to_string(manifest_dir().join("labs/notifications").join(name)).expect(name)
}

/// Posts a solution the way htmx does and returns the submission id from the fragment.
async fn submit(app: &TestApp, source: &str, mode: &str) -> i64 {
    let response = app
        .post_htmx(
            &format!("/labs/{LAB}/submissions"),
            &[
                ("source", source),
                ("mode", mode),
                ("language", "javascript"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let fragment = scraper::Html::parse_fragment(&response.text().await.expect("body"));
    let events = attr(&fragment, ".submission", "data-events");
    events
        .split("/events")
        .next()
        .and_then(|path| path.rsplit('/').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no submission id in {events}"))
}

async fn follow(app: &TestApp, id: i64) -> (Vec<scraper::Html>, String) {
    let (results, summary) = crate::common::follow_submission(app, LAB, id).await;
    let results = results
        .iter()
        .map(|r| scraper::Html::parse_fragment(r))
        .collect();
    (results, summary)
}

fn public_and_hidden_count() -> usize {
    let count = |file: &str| {
        serde_json::from_str::<Vec<Value>>(&lab_file(file))
            .expect("tests json")
            .len()
    };
    count("tests/public.json") + count("tests/hidden.json")
}

#[tokio::test]
async fn the_challenge_page_shows_the_task_the_starter_and_the_public_tests() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/labs/notifications/challenge").await;
    assert_eq!(text(&html, "h1"), "Retrying, idempotent Kafka consumer");
    assert!(text(&html, "textarea#source").contains("function createConsumer"));
    assert_eq!(select(&html, ".public-test").len(), 3);
    assert!(text(&html, ".challenge-task").contains("orders-retry-1s"));
    // Public tests show their expected decisions, computed by the Rust reference.
    let first_test = select(&html, ".public-test")[0];
    let pre = scraper::Selector::parse("pre.json").expect("selector");
    let blocks: Vec<String> = first_test
        .select(&pre)
        .map(|b| b.text().collect())
        .collect();
    assert_eq!(blocks.len(), 2, "input and expected output");
    let expected: Value = serde_json::from_str(&blocks[1]).expect("expected json");
    assert_eq!(
        expected[1],
        serde_json::json!({"action": "wait", "untilMs": 1000})
    );
    let lesson = select(&html, ".breadcrumbs a")
        .into_iter()
        .filter_map(|a| a.value().attr("href"))
        .any(|href| href == "/lessons/kafka-retries-dead-letters");
    assert!(lesson, "the breadcrumb links the lesson");
}

#[tokio::test]
async fn the_reference_consumer_is_accepted_and_solves_the_lab() {
    let app = TestApp::spawn().await;
    app.sign_up("consumer@example.com").await;
    let id = submit(&app, &lab_file("reference.js"), "submit").await;
    let (results, summary) = follow(&app, id).await;
    assert_eq!(
        results.len(),
        public_and_hidden_count() + 30,
        "public + hidden + random"
    );
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !select(r, ".is-fail").is_empty())
        .map(|r| text(r, ".test-name"))
        .collect();
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(summary.contains("Accepted"), "{summary}");
    let (verdict, score): (String, i32) =
        sqlx::query_as("SELECT verdict, score FROM submissions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db())
            .await
            .expect("row");
    assert_eq!((verdict.as_str(), score), ("accepted", 100));
    let dashboard = app.get_html("/dashboard").await;
    assert!(text(&dashboard, "#labs-solved").contains("Retrying, idempotent Kafka consumer"));
}

#[tokio::test]
async fn the_starter_gets_a_wrong_answer_with_expected_and_actual() {
    let app = TestApp::spawn().await;
    app.sign_up("starter@example.com").await;
    let id = submit(&app, &lab_file("starter.js"), "run").await;
    let (results, summary) = follow(&app, id).await;
    assert_eq!(results.len(), 3);
    assert!(summary.contains("Wrong answer"), "{summary}");
    let first = &results[0];
    assert_eq!(attr(first, ".test-result", "data-verdict"), "wrong_answer");
    // The first example's first delivery is a retry; the starter dead-letters it.
    assert_eq!(
        text(first, ".test-message"),
        "Wrong answer: delivery #1 (e1 attempt 1 from orders at t=0, outcome retryable): \
         expected {\"action\":\"retry\",\"attempt\":2,\"delayMs\":1000,\"dueAt\":1000,\"topic\":\"orders-retry-1s\"}, \
         got {\"action\":\"dead_letter\",\"reason\":\"fatal\",\"topic\":\"orders-dlt\"}"
    );
    let blocks = select(first, "pre.json");
    assert_eq!(blocks.len(), 3, "input, expected and actual");
    let expected: Value =
        serde_json::from_str(&blocks[1].text().collect::<String>()).expect("expected");
    let actual: Value =
        serde_json::from_str(&blocks[2].text().collect::<String>()).expect("actual");
    assert_eq!(expected[0]["action"], "retry");
    assert_eq!(actual[0]["action"], "dead_letter");
    assert_eq!(
        actual.as_array().map(Vec::len),
        Some(4),
        "one decision per delivery"
    );
}

#[tokio::test]
async fn a_consumer_without_dedupe_fails_the_hidden_duplicate_storm_without_seeing_it() {
    let app = TestApp::spawn().await;
    app.sign_up("nodedupe@example.com").await;
    let reference = lab_file("reference.js");
    let forgetful = reference
        .replace("if (state.handled) return { action: 'duplicate' };", "")
        .replace(
            "if (state.handled || attempt === state.lastAttempt) return { action: 'duplicate' };",
            "",
        );
    assert_ne!(forgetful, reference, "the dedupe lines were found");
    let id = submit(&app, &forgetful, "submit").await;
    let (results, _) = follow(&app, id).await;
    let storm = results
        .iter()
        .find(|r| text(r, ".test-name") == "duplicate storm")
        .expect("the duplicate storm test ran");
    assert_eq!(text(storm, ".badge"), "hidden");
    assert_eq!(attr(storm, ".test-result", "data-verdict"), "wrong_answer");
    assert_eq!(
        text(storm, ".test-message"),
        "Wrong answer: your answer differs from the reference (hidden tests do not show their data)"
    );
    assert!(select(storm, "pre.json").is_empty(), "no hidden data");
    let html = storm.html();
    for leak in ["s1", "orders-retry", "duplicate\"", "delivery #", " ms<"] {
        assert!(!html.contains(leak), "hidden result leaks {leak:?}: {html}");
    }
    let (verdict,): (String,) = sqlx::query_as("SELECT verdict FROM submissions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db())
        .await
        .expect("row");
    assert_eq!(verdict, "wrong_answer");
}
