use std::time::Duration;

use crate::common::{ContentFixture, TestApp, TestOptions, attr, select, text};

#[tokio::test]
async fn home_lists_every_track_with_links_and_lesson_counts() {
    let app = TestApp::spawn().await;
    let library = app.state().content.library();
    let html = app.get_html("/").await;
    let cards = select(&html, ".track-card");
    assert_eq!(cards.len(), library.tracks.len());
    assert!(
        library.tracks.len() >= 10,
        "every seed topic area has a track"
    );
    let first = &library.tracks[0];
    assert_eq!(
        attr(&html, ".track-card h3 a", "href"),
        format!("/tracks/{}", first.id)
    );
    assert_eq!(
        text(&html, ".track-card .track-count"),
        format!("0 of {} lessons complete", first.lessons.len())
    );
}

#[tokio::test]
async fn lesson_page_has_toc_highlighted_code_quiz_interview_questions_and_neighbours() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/lessons/event-loop").await;
    assert_eq!(
        text(&html, "article.lesson h1"),
        "The event loop, phase by phase"
    );
    let toc = select(&html, ".toc a");
    assert!(toc.len() >= 3, "table of contents lists the sections");
    let first_anchor = toc[0].value().attr("href").expect("href");
    let id = first_anchor.trim_start_matches('#');
    assert_eq!(
        select(
            &html,
            &format!(".lesson-body h2[id='{id}'], .lesson-body h3[id='{id}']")
        )
        .len(),
        1
    );
    assert!(
        !select(&html, ".lesson-body pre.code code span[class^='hl-']").is_empty(),
        "code is highlighted with classes"
    );
    assert!(!select(&html, "form.quiz input[type=radio][name=choice]").is_empty());
    assert!(
        !select(&html, "form.quiz input[name=csrf_token]").is_empty(),
        "quiz forms carry the CSRF token"
    );
    assert!(select(&html, "details.interview summary").len() >= 3);
    assert_eq!(
        attr(&html, ".prev-next a[rel=prev]", "href"),
        "/lessons/what-is-nodejs"
    );
    assert_eq!(
        attr(&html, ".prev-next a[rel=next]", "href"),
        "/lessons/async-patterns"
    );
}

#[tokio::test]
async fn lessons_with_a_planned_lab_name_it_without_a_dead_link() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/lessons/circuit-breaker").await;
    assert!(text(&html, ".lab-link").starts_with("Lab: Circuit breaker"));
    assert!(
        select(&html, ".lab-link a").is_empty(),
        "no link until the lab exists"
    );
}

#[tokio::test]
async fn mermaid_diagrams_load_the_diagram_script_only_where_needed() {
    let app = TestApp::spawn().await;
    let with = app.get_html("/lessons/circuit-breaker").await;
    assert!(!select(&with, "figure.diagram pre.mermaid").is_empty());
    let home = app.get_html("/").await;
    assert!(select(&home, "script[src*='mermaid']").is_empty());
}

#[tokio::test]
async fn unknown_lessons_and_tracks_get_a_404_page_with_a_message() {
    let app = TestApp::spawn().await;
    for path in [
        "/lessons/no-such-lesson",
        "/tracks/nope",
        "/definitely/not/here",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        let html = scraper::Html::parse_document(&response.text().await.expect("body"));
        assert_eq!(
            text(&html, ".error-message"),
            "The page you asked for does not exist."
        );
    }
}

#[tokio::test]
async fn drafts_are_shown_to_instructors_only() {
    let fixture = ContentFixture::new();
    fixture.lesson("1-open.md", "open", 1, "", "# Open\n\nVisible.\n");
    fixture.lesson(
        "2-secret.md",
        "secret",
        2,
        "draft = true\n",
        "# Secret\n\nNot yet.\n",
    );
    let app = TestApp::spawn_with(TestOptions {
        content_dir: fixture.path().to_path_buf(),
        ..Default::default()
    })
    .await;

    assert_eq!(app.get("/lessons/secret").await.status(), 404);
    let track = app.get_html("/tracks/basics").await;
    assert_eq!(select(&track, ".lesson-item").len(), 1);

    app.sign_up_as("teacher@example.com", labdeck::accounts::Role::Instructor)
        .await;
    let html = app.get_html("/lessons/secret").await;
    assert_eq!(text(&html, ".lesson-header .badge-draft"), "draft");
    let track = app.get_html("/tracks/basics").await;
    assert_eq!(select(&track, ".lesson-item").len(), 2);
}

#[tokio::test]
async fn a_malformed_lesson_is_skipped_and_reported_while_the_rest_is_served() {
    let fixture = ContentFixture::new();
    fixture.lesson("1-good.md", "good", 1, "", "# Good\n");
    fixture.write("2-bad.md", "+++\ntitle = \"Bad\"\nslug = \n+++\nbody\n");
    let app = TestApp::spawn_with(TestOptions {
        content_dir: fixture.path().to_path_buf(),
        ..Default::default()
    })
    .await;
    assert_eq!(app.get("/lessons/good").await.status(), 200);
    let diagnostics = &app.state().content.library().diagnostics;
    assert_eq!(diagnostics.len(), 1);
    assert!(
        diagnostics[0]
            .to_string()
            .contains("2-bad.md:3: front matter"),
        "{}",
        diagnostics[0]
    );
}

#[tokio::test]
async fn dev_mode_reloads_an_edited_lesson_and_notifies_open_pages() {
    let fixture = ContentFixture::new();
    fixture.lesson("1-live.md", "live", 1, "", "Before the edit.\n");
    let app = TestApp::spawn_with(TestOptions {
        content_dir: fixture.path().to_path_buf(),
        dev: true,
        ..Default::default()
    })
    .await;
    let html = app.get_html("/lessons/live").await;
    assert_eq!(attr(&html, "body", "data-livereload"), "/__livereload");

    let mut events = app
        .client
        .get(app.url("/__livereload"))
        .send()
        .await
        .expect("sse");
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    fixture.lesson("1-live.md", "live", 1, "", "After the edit.\n");

    let event = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = String::new();
        while let Ok(Some(chunk)) = events.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("event: reload") {
                break;
            }
        }
        seen
    })
    .await
    .expect("a reload event arrives");
    assert!(event.contains("event: reload"));
    let html = app.get_html("/lessons/live").await;
    assert!(text(&html, ".lesson-body").contains("After the edit."));
}

#[tokio::test]
async fn live_reload_is_off_outside_dev_mode() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/__livereload").await.status(), 404);
    let html = app.get_html("/").await;
    assert!(select(&html, "body[data-livereload]").is_empty());
}
