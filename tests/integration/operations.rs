use crate::common::{OwnRedis, TestApp, select};

#[tokio::test]
async fn health_and_readiness_report_the_real_dependencies() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.expect("body"), "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body, serde_json::json!({ "postgres": "ok", "redis": "ok" }));
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    app.get("/lessons/event-loop").await;
    let metrics = app.get("/metrics").await.text().await.expect("body");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_requests_total{")
                && l.contains("route=\"/lessons/{slug}\"")
                && l.contains("status=\"200\"")),
        "{metrics}"
    );
    assert!(metrics.contains("http_request_duration_seconds"));
}

#[tokio::test]
async fn every_page_carries_security_headers_and_a_request_id() {
    let app = TestApp::spawn().await;
    for path in ["/", "/lessons/event-loop", "/nope", "/healthz"] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-frame-options"], "DENY");
        assert!(uuid::Uuid::parse_str(headers["x-request-id"].to_str().expect("ascii")).is_ok());
        assert!(
            headers.get("strict-transport-security").is_none(),
            "no HSTS over plain http"
        );
    }
    let given = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("get");
    assert_eq!(
        given.headers()["x-request-id"],
        "trace-me-42",
        "an incoming id is propagated"
    );
}

#[tokio::test]
async fn pages_are_compressed_for_clients_that_accept_it() {
    let app = TestApp::spawn().await;
    let raw = reqwest::Client::builder().build().expect("client");
    let response = raw
        .get(app.url("/lessons/event-loop"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("get");
    assert_eq!(response.headers()["content-encoding"], "gzip");
}

#[tokio::test]
async fn static_assets_are_cache_busted() {
    let app = TestApp::spawn().await;
    let html = app.get_html("/").await;
    let css = crate::common::attr(
        &html,
        "link[rel=stylesheet][href^='/static/css/app.css']",
        "href",
    );
    assert!(css.contains("?v="), "{css}");
    let versioned = app.get(&css).await;
    assert_eq!(versioned.status(), 200);
    assert_eq!(
        versioned.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let plain = app.get("/static/css/app.css").await;
    assert_eq!(plain.headers()["cache-control"], "no-cache");
    let highlight = crate::common::attr(
        &html,
        "link[rel=stylesheet][href^='/highlight.css']",
        "href",
    );
    let response = app.get(&highlight).await;
    assert_eq!(
        response.headers()["content-type"],
        "text/css; charset=utf-8"
    );
    assert!(response.text().await.expect("css").contains(".hl-"));
    assert!(select(&html, "script[src^='/static/js/theme.js?v=']").len() == 1);
}

#[tokio::test]
async fn when_redis_goes_down_readiness_fails_but_pages_and_logins_keep_working() {
    let mut redis = OwnRedis::start();
    let app = TestApp::spawn_with(crate::common::TestOptions {
        redis_url: redis.url(),
        ..Default::default()
    })
    .await;
    app.sign_up("zed@example.com").await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    redis.stop();

    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.expect("json");
    assert_eq!(body["redis"], "unavailable");
    assert_eq!(body["postgres"], "ok");
    assert_eq!(app.get("/lessons/event-loop").await.status(), 200);
    // The login throttle fails open: a correct password still logs in.
    let other = app.other_client();
    let login = other
        .post_form(
            "/login",
            &[
                ("email", "zed@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(login.status(), 303);
}
