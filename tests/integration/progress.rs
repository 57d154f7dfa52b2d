use crate::common::{TestApp, select, text};

#[tokio::test]
async fn completing_a_lesson_updates_the_track_page_and_the_dashboard() {
    let app = TestApp::spawn().await;
    app.sign_up("ivy@example.com").await;
    let lesson = app.get_html("/lessons/event-loop").await;
    assert_eq!(
        crate::common::attr(&lesson, ".complete-form", "action"),
        "/lessons/event-loop/complete"
    );

    let response = app
        .post_form("/lessons/event-loop/complete", &[("completed", "true")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/lessons/event-loop");

    let track = app.get_html("/tracks/node-fundamentals").await;
    assert_eq!(select(&track, ".lesson-item.is-done").len(), 1);
    let dashboard = app.get_html("/dashboard").await;
    let total = app.state().content.library().lessons().count();
    assert_eq!(text(&dashboard, "#stat-completed"), format!("1 / {total}"));
    assert_eq!(
        text(&dashboard, "tr[data-track='node-fundamentals'] .track-done"),
        "1 / 8"
    );
    assert_eq!(text(&dashboard, "#stat-streak"), "1");
    let activity: Vec<String> = select(&dashboard, ".activity li")
        .iter()
        .map(|li| li.text().collect())
        .collect();
    assert!(
        activity[0].starts_with("Completed The event loop"),
        "{activity:?}"
    );
    assert!(
        activity
            .iter()
            .any(|a| a.starts_with("Started The event loop")),
        "{activity:?}"
    );
}

#[tokio::test]
async fn htmx_mark_complete_returns_only_the_button_fragment_and_can_be_undone() {
    let app = TestApp::spawn().await;
    app.sign_up("jo@example.com").await;
    let response = app
        .post_htmx("/lessons/event-loop/complete", &[("completed", "true")])
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("HX-Request")
    );
    let fragment = scraper::Html::parse_fragment(&response.text().await.expect("body"));
    assert!(
        select(&fragment, "html > body > header").is_empty(),
        "a fragment, not a page"
    );
    assert_eq!(
        text(&fragment, ".complete-status .badge-done"),
        "✓ Completed"
    );

    let undo = app
        .post_htmx("/lessons/event-loop/complete", &[("completed", "false")])
        .await;
    let fragment = scraper::Html::parse_fragment(&undo.text().await.expect("body"));
    assert_eq!(text(&fragment, "button"), "Mark lesson complete");
    let (completed,): (Option<chrono::DateTime<chrono::Utc>>,) =
        sqlx::query_as("SELECT completed_at FROM lesson_progress WHERE lesson_slug = 'event-loop'")
            .fetch_one(&app.db())
            .await
            .expect("row");
    assert!(completed.is_none());
}

#[tokio::test]
async fn marking_complete_needs_an_account() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form("/lessons/event-loop/complete", &[("completed", "true")])
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?next=%2Flessons%2Fevent-loop"
    );
}

fn quiz_of(app: &TestApp, slug: &str) -> labdeck::content::markdown::Quiz {
    app.state()
        .content
        .library()
        .lesson(slug)
        .expect("lesson")
        .rendered
        .quizzes[0]
        .clone()
}

#[tokio::test]
async fn quiz_answers_are_checked_on_the_server_and_recorded() {
    let app = TestApp::spawn().await;
    app.sign_up("kim@example.com").await;
    let quiz = quiz_of(&app, "event-loop");
    let wrong = ((quiz.answer + 1) % quiz.options_html.len()).to_string();
    let path = format!("/lessons/event-loop/quiz/{}", quiz.id);

    let response = app.post_htmx(&path, &[("choice", &wrong)]).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("HX-Request")
    );
    let fragment = scraper::Html::parse_fragment(&response.text().await.expect("body"));
    assert_eq!(select(&fragment, "form.quiz.is-wrong").len(), 1);
    assert_eq!(text(&fragment, ".quiz-verdict"), "Not quite.");
    assert_eq!(select(&fragment, ".quiz-option.is-answer").len(), 1);

    let right = quiz.answer.to_string();
    let response = app.post_form(&path, &[("choice", &right)]).await;
    assert_eq!(response.status(), 303, "plain form posts redirect back");
    assert_eq!(
        response.headers()["location"],
        format!("/lessons/event-loop#quiz-{}", quiz.id)
    );

    let page = app.get_html("/lessons/event-loop").await;
    assert_eq!(
        select(&page, &format!("form#quiz-{}.is-correct", quiz.id)).len(),
        1,
        "latest answer shown"
    );
    let rows: Vec<(i32, bool)> =
        sqlx::query_as("SELECT choice, correct FROM quiz_answers ORDER BY id")
            .fetch_all(&app.db())
            .await
            .expect("rows");
    assert_eq!(
        rows,
        vec![
            (wrong.parse().expect("int"), false),
            (quiz.answer as i32, true)
        ]
    );
    let dashboard = app.get_html("/dashboard").await;
    assert_eq!(text(&dashboard, "#stat-quizzes"), "1 / 1");
}

#[tokio::test]
async fn visitors_can_answer_quizzes_without_javascript_but_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let quiz = quiz_of(&app, "event-loop");
    let response = app
        .post_form(
            &format!("/lessons/event-loop/quiz/{}", quiz.id),
            &[("choice", &quiz.answer.to_string())],
        )
        .await;
    assert_eq!(response.status(), 200);
    let html = scraper::Html::parse_document(&response.text().await.expect("body"));
    assert_eq!(
        select(&html, &format!("form#quiz-{}.is-correct", quiz.id)).len(),
        1
    );
    assert_eq!(
        text(&html, &format!("form#quiz-{} .quiz-result .muted", quiz.id)),
        "Log in to keep your answers."
    );
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM quiz_answers")
        .fetch_one(&app.db())
        .await
        .expect("count");
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn bad_quiz_answers_get_a_clear_error_as_a_page_or_as_a_toast() {
    let app = TestApp::spawn().await;
    let quiz = quiz_of(&app, "event-loop");
    let path = format!("/lessons/event-loop/quiz/{}", quiz.id);

    let page = app.post_form(&path, &[("choice", "99")]).await;
    assert_eq!(page.status(), 400);
    let html = scraper::Html::parse_document(&page.text().await.expect("body"));
    assert_eq!(
        text(&html, ".error-message"),
        "That is not one of the options."
    );

    let toast = app.post_htmx(&path, &[]).await;
    assert_eq!(toast.status(), 400);
    assert_eq!(toast.headers()["hx-retarget"], "#toasts");
    let fragment = scraper::Html::parse_fragment(&toast.text().await.expect("body"));
    assert_eq!(text(&fragment, ".toast"), "Choose an answer first.");

    let unknown = app
        .post_form("/lessons/event-loop/quiz/no-such-quiz", &[("choice", "0")])
        .await;
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn instructors_see_per_lesson_counts_and_can_export_progress_as_csv() {
    let app = TestApp::spawn().await;
    app.sign_up("=cmd@example.com").await;
    app.post_form("/lessons/event-loop/complete", &[("completed", "true")])
        .await;
    let quiz = quiz_of(&app, "event-loop");
    app.post_form(
        &format!("/lessons/event-loop/quiz/{}", quiz.id),
        &[("choice", &quiz.answer.to_string())],
    )
    .await;

    let teacher = app.other_client();
    teacher
        .sign_up_as("teacher@example.com", labdeck::accounts::Role::Instructor)
        .await;

    let page = teacher.get_html("/instructor").await;
    assert_eq!(text(&page, "tr[data-lesson='event-loop'] .started"), "1");
    assert_eq!(text(&page, "tr[data-lesson='event-loop'] .completed"), "1");

    let csv_response = teacher.get("/instructor/progress.csv").await;
    assert_eq!(csv_response.status(), 200);
    assert_eq!(
        csv_response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let body = csv_response.text().await.expect("csv");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(&headers[0], "email");
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        &rows[0][0], "'=cmd@example.com",
        "formula-looking cells are neutralised"
    );
    assert_eq!(&rows[0][2], "event-loop");
    assert!(!rows[0][4].is_empty(), "completed_at filled");
    assert_eq!((&rows[0][5], &rows[0][6]), ("1", "1"));

    assert_eq!(
        app.get("/instructor/progress.csv").await.status(),
        403,
        "learners cannot export"
    );
}
