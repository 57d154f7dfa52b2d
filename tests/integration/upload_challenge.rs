//! The upload lab's graded challenge: its large hidden upload is generated inside the sandbox,
//! so a solution that keeps the chunks hits the memory limit while a streaming one passes; and
//! the challenge page grades submissions like every other lab's.

use std::sync::Arc;
use std::time::Duration;

use labdeck::grading::{self, Lab, Language, Mode, Report, Visibility};
use labdeck::sandbox::Sandbox;

use crate::common::{TestApp, attr, manifest_dir, select, text};

const LARGE_UPLOAD: &str = "a large upload in 64 KiB chunks";

/// Streams correctly but also keeps every chunk it was given, as a naive "buffer then parse"
/// solution would.
const HOARDING: &str = "
const __kept = [];
const __createStreaming = createAggregator;
createAggregator = function () {
  const inner = __createStreaming();
  return {
    push(chunk) { __kept.push(chunk); inner.push(chunk); },
    finish() { return inner.finish(); },
  };
};";

fn lab_file(name: &str) -> String {
    std::fs::read_to_string(manifest_dir().join("labs/upload").join(name)).expect("lab file")
}

fn upload_lab() -> Arc<Lab> {
    labdeck::labs::load_challenges(&manifest_dir().join("labs"))
        .expect("labs load")
        .into_iter()
        .find(|lab| lab.id == "upload")
        .expect("the upload lab has a challenge")
}

/// Grades on a thread with the grader threads' large stack.
fn grade(source: String) -> Report {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(move || {
            let sandbox = Sandbox::from_project(&manifest_dir()).expect("sandbox");
            let lab = upload_lab();
            grading::grade(
                &sandbox,
                &lab,
                Language::Javascript,
                &source,
                Mode::Submit,
                |_| {},
            )
        })
        .expect("thread")
        .join()
        .expect("grading does not panic")
}

fn verdict_of<'a>(report: &'a Report, name: &str) -> &'a str {
    &report
        .results
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("no test named {name:?}"))
        .verdict
}

#[test]
fn keeping_every_chunk_runs_out_of_memory_where_streaming_passes() {
    let reference = grade(lab_file("reference.js"));
    let failed: Vec<_> = reference
        .results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {}", r.name, r.message))
        .collect();
    assert!(failed.is_empty(), "the reference fails {failed:?}");
    assert_eq!(verdict_of(&reference, LARGE_UPLOAD), "accepted");

    let hoarding = grade(format!("{}\n{HOARDING}", lab_file("reference.js")));
    assert_eq!(verdict_of(&hoarding, LARGE_UPLOAD), "memory_limit");
    let public = hoarding
        .results
        .iter()
        .filter(|r| r.visibility == Visibility::Public);
    assert!(
        public.clone().count() > 0 && public.clone().all(|r| r.passed),
        "small uploads fit in memory even when kept: only large ones tell hoarding apart"
    );
    assert_eq!(hoarding.verdict, "memory_limit");
}

#[test]
fn the_starter_fails_with_a_readable_first_difference() {
    let starter = grade(lab_file("starter.js"));
    assert!(!starter.accepted());
    let quoted = starter
        .results
        .iter()
        .find(|r| r.name == "quoted fields keep their commas and doubled quotes")
        .expect("public test");
    assert_eq!(quoted.verdict, "wrong_answer");
    assert_eq!(quoted.message, "invalidRows: expected 0, got 1");
}

async fn submit(app: &TestApp, source: &str) -> i64 {
    let response = app
        .post_htmx(
            "/labs/upload/submissions",
            &[
                ("source", source),
                ("mode", "submit"),
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

/// Waits for the submission's stored verdict (the SSE stream is covered by the labs tests).
async fn final_verdict(app: &TestApp, id: i64) -> (String, i32) {
    tokio::time::timeout(Duration::from_secs(180), async {
        loop {
            let row: Option<(String, i32)> = sqlx::query_as(
                "SELECT verdict, score FROM submissions WHERE id = $1 AND verdict <> 'pending'",
            )
            .bind(id)
            .fetch_optional(&app.db())
            .await
            .expect("query");
            if let Some(row) = row {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("grading finishes")
}

#[tokio::test]
async fn the_challenge_page_grades_the_reference_as_accepted_and_the_starter_as_failed() {
    let app = TestApp::spawn().await;
    let page = app.get_html("/labs/upload/challenge").await;
    assert_eq!(text(&page, "h1"), "Streaming CSV aggregator");
    assert!(text(&page, "textarea#source").contains("function createAggregator"));
    assert_eq!(select(&page, ".public-test").len(), 8);

    app.sign_up("csv@example.com").await;
    let id = submit(&app, &lab_file("starter.js")).await;
    let (verdict, score) = final_verdict(&app, id).await;
    assert_eq!(verdict, "wrong_answer");
    assert!(score < 100, "{score}");

    let id = submit(&app, &lab_file("reference.js")).await;
    assert_eq!(final_verdict(&app, id).await, ("accepted".to_string(), 100));
    let page = app.get_html("/labs/upload/challenge").await;
    assert!(text(&page, "h1").contains("Solved"));
}

#[test]
fn an_endless_loop_stops_at_the_submissions_fuel_budget() {
    let lab = upload_lab();
    let budget = lab
        .submission_fuel
        .expect("the upload lab caps a submission's fuel");
    let report = grade("function createAggregator() { for (;;) {} }".to_string());
    let (skipped, ran): (Vec<_>, Vec<_>) = report
        .results
        .iter()
        .partition(|r| r.message.starts_with("Not run:"));
    assert!(report.results.iter().all(|r| r.verdict == "time_limit"));
    // Every test ran to its own limit until the budget was gone (public + hidden: 18 tests,
    // the large upload with its own 4.5·10¹⁰), then the 30 random traces were not run.
    assert_eq!(
        ran.len(),
        18,
        "{:?}",
        ran.iter().map(|r| &r.name).collect::<Vec<_>>()
    );
    assert_eq!(skipped.len(), 30);
    assert!(skipped.iter().all(|r| r.visibility == Visibility::Random));
    // What the learner sees of the spend: public tests show their fuel; all stopped at the limit.
    let public_fuel: u64 = ran.iter().map(|r| r.fuel_used).sum();
    assert!(public_fuel <= budget);
}
