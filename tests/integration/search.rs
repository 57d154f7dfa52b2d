use crate::common::{TestApp, select, text};

#[tokio::test]
async fn search_finds_lessons_by_word_prefix_and_highlights_matches() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/search?q=backpress").await;
    let hits: Vec<String> = select(&html, ".search-hit > a")
        .iter()
        .filter_map(|a| a.value().attr("href").map(String::from))
        .collect();
    assert!(
        hits.contains(&"/lessons/streams-backpressure".to_string()),
        "{hits:?}"
    );
    assert!(!select(&html, ".search-hit .snippet mark").is_empty());
    assert_eq!(crate::common::attr(&html, "#q", "value"), "backpress");
}

#[tokio::test]
async fn htmx_search_returns_the_results_fragment_and_varies_on_hx_request() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/search?q=circuit"))
        .header("HX-Request", "true")
        .send()
        .await
        .expect("get");
    assert!(
        response.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("HX-Request")
    );
    let body = response.text().await.expect("body");
    assert!(!body.contains("<html"), "fragment only");
    let fragment = scraper::Html::parse_fragment(&body);
    assert!(
        select(&fragment, ".search-hit > a")
            .iter()
            .any(|a| a.value().attr("href") == Some("/lessons/circuit-breaker"))
    );

    let full = app.get("/search?q=circuit").await;
    assert!(
        full.headers()["vary"]
            .to_str()
            .expect("ascii")
            .contains("HX-Request")
    );
    assert!(full.text().await.expect("body").contains("<html"));
}

#[tokio::test]
async fn odd_search_input_is_handled_gracefully() {
    let app = TestApp::spawn().await;
    for query in ["", "%27%20%7C%20!%3A*", "zzzzqqqq", "%3Cscript%3E"] {
        let html = app.get_html(&format!("/search?q={query}")).await;
        assert!(select(&html, "script:not([src])").is_empty(), "{query}");
        if query == "zzzzqqqq" {
            assert_eq!(text(&html, ".search-empty"), "No lessons match “zzzzqqqq”.");
        }
    }
}

#[tokio::test]
async fn htmx_history_restores_get_the_full_page() {
    let app = TestApp::spawn().await;
    let response = app
        .client
        .get(app.url("/search?q=circuit"))
        .header("HX-Request", "true")
        .header("HX-History-Restore-Request", "true")
        .send()
        .await
        .expect("get");
    assert!(response.text().await.expect("body").contains("<html"));
}
