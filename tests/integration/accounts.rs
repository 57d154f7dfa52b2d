use crate::common::{TestApp, form_error, select, text};

async fn signup_error(app: &TestApp, email: &str, password: &str) -> (u16, String) {
    let response = app
        .post_form("/signup", &[("email", email), ("password", password)])
        .await;
    form_error(response).await
}

#[tokio::test]
async fn signing_up_logs_the_learner_in_and_opens_the_dashboard() {
    let app = TestApp::spawn().await;
    let response = app
        .post_form(
            "/signup",
            &[
                ("email", "ada@example.com"),
                ("display_name", "Ada"),
                ("password", "analytical engine 1843"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/dashboard");
    let html = app.get_html("/dashboard").await;
    assert_eq!(text(&html, "h1"), "Your progress");
    assert_eq!(
        text(&html, "#stat-completed"),
        format!("0 / {}", app.state().content.library().lessons().count())
    );
    assert!(!select(&html, "form[action='/logout']").is_empty());
}

#[tokio::test]
async fn sign_up_explains_what_is_wrong_and_keeps_the_email() {
    let app = TestApp::spawn().await;
    assert_eq!(
        signup_error(&app, "not-an-email", "correct horse battery").await,
        (
            422,
            "Enter an email address like name@example.com.".to_string()
        )
    );
    assert_eq!(
        signup_error(&app, "bob@example.com", "short").await,
        (
            422,
            "Use at least 10 characters for your password.".to_string()
        )
    );
    let response = app
        .post_form(
            "/signup",
            &[("email", "bob@example.com"), ("password", "password123456")],
        )
        .await;
    let html = scraper::Html::parse_document(&response.text().await.expect("body"));
    assert!(text(&html, ".form-error").contains("commonly used"));
    assert_eq!(
        crate::common::attr(&html, "input[name=email]", "value"),
        "bob@example.com"
    );

    app.sign_up("carol@example.com").await;
    let other = app.other_client();
    assert_eq!(
        signup_error(&other, "Carol@Example.com", "another long passphrase").await,
        (
            422,
            "An account with that email already exists.".to_string()
        )
    );
}

#[tokio::test]
async fn stored_passwords_are_argon2_hashes() {
    let app = TestApp::spawn().await;
    app.sign_up("dora@example.com").await;
    let (hash,): (String,) =
        sqlx::query_as("SELECT password_hash FROM users WHERE email = 'dora@example.com'")
            .fetch_one(&app.db())
            .await
            .expect("user row");
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("correct horse"));
}

#[tokio::test]
async fn wrong_credentials_are_refused_and_repeated_failures_are_throttled() {
    let app = TestApp::spawn().await;
    app.sign_up("eve@example.com").await;
    let attacker = app.other_client();
    for _ in 0..5 {
        let response = attacker.log_in("eve@example.com", "not the password").await;
        assert_eq!(
            form_error(response).await,
            (
                401,
                "That email and password do not match an account.".to_string()
            )
        );
    }
    let blocked = attacker
        .log_in("eve@example.com", "correct horse battery")
        .await;
    assert_eq!(blocked.status(), 429);
    let retry_after: i64 = blocked.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    let html = scraper::Html::parse_document(&blocked.text().await.expect("body"));
    assert!(
        text(&html, ".form-error").starts_with("Too many failed attempts. Try again in 15 minutes")
    );
}

#[tokio::test]
async fn unknown_emails_get_the_same_answer_as_wrong_passwords() {
    let app = TestApp::spawn().await;
    let response = app.log_in("nobody@example.com", "whatever it is").await;
    assert_eq!(
        form_error(response).await,
        (
            401,
            "That email and password do not match an account.".to_string()
        )
    );
}

#[tokio::test]
async fn logging_in_goes_back_to_the_page_asked_for_but_never_off_site() {
    let app = TestApp::spawn().await;
    app.sign_up("fay@example.com").await;
    let browser = app.other_client();
    let response = browser
        .post_form(
            "/login",
            &[
                ("email", "FAY@example.com"),
                ("password", "correct horse battery"),
                ("next", "/lessons/event-loop"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/lessons/event-loop");
    let other = app.other_client();
    let response = other
        .post_form(
            "/login",
            &[
                ("email", "fay@example.com"),
                ("password", "correct horse battery"),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(response.headers()["location"], "/dashboard");
}

#[tokio::test]
async fn session_cookies_are_locked_down_and_logging_out_kills_the_session() {
    let app = TestApp::spawn().await;
    app.sign_up("gus@example.com").await;
    // A client without a cookie jar, so the test sees and replays the raw cookies.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let page = raw.get(app.url("/login")).send().await.expect("login page");
    let csrf_cookie = first_pair(page.headers()["set-cookie"].to_str().expect("ascii"));
    let html = scraper::Html::parse_document(&page.text().await.expect("body"));
    let token = crate::common::attr(&html, "meta[name=csrf-token]", "content");
    let response = raw
        .post(app.url("/login"))
        .header("cookie", &csrf_cookie)
        .form(&[
            ("email", "gus@example.com"),
            ("password", "correct horse battery"),
            ("csrf_token", &token),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), 303);
    let set_cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("labdeck_session="))
        .expect("session cookie")
        .to_string();
    let flags = set_cookie.to_lowercase();
    for flag in ["httponly", "samesite=lax", "path=/", "max-age="] {
        assert!(flags.contains(flag), "{flag} missing from {set_cookie}");
    }
    let cookies = format!("{}; {csrf_cookie}", first_pair(&set_cookie));
    let dashboard = raw
        .get(app.url("/dashboard"))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("get");
    assert_eq!(dashboard.status(), 200);

    let logout = raw
        .post(app.url("/logout"))
        .header("cookie", &cookies)
        .form(&[("csrf_token", &token)])
        .send()
        .await
        .expect("logout");
    assert_eq!(logout.status(), 303);
    // Replaying the old cookie does not work: the session row is gone.
    let replay = raw
        .get(app.url("/dashboard"))
        .header("cookie", &cookies)
        .send()
        .await
        .expect("get");
    assert_eq!(replay.status(), 303);
    assert_eq!(replay.headers()["location"], "/login?next=%2Fdashboard");
}

fn first_pair(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("cookie pair")
        .to_string()
}

#[tokio::test]
async fn forms_without_a_valid_csrf_token_are_refused() {
    let app = TestApp::spawn().await;
    app.get("/").await;
    let response = app
        .client
        .post(app.url("/signup"))
        .form(&[
            ("email", "mal@example.com"),
            ("password", "correct horse battery"),
            ("csrf_token", "forged"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403);
    let html = scraper::Html::parse_document(&response.text().await.expect("body"));
    assert!(
        text(&html, ".error-message")
            .starts_with("This form has expired or did not come from labdeck.")
    );
    let missing = app
        .client
        .post(app.url("/logout"))
        .send()
        .await
        .expect("post");
    assert_eq!(missing.status(), 403);
    let (users,): (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&app.db())
        .await
        .expect("count");
    assert_eq!(users, 0, "nothing was created");
}

#[tokio::test]
async fn staff_pages_need_the_right_role() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.get("/instructor").await.status(),
        303,
        "visitors are sent to log in"
    );
    app.sign_up("hal@example.com").await;
    let response = app.get("/instructor").await;
    assert_eq!(response.status(), 403);
    let html = scraper::Html::parse_document(&response.text().await.expect("body"));
    assert_eq!(
        text(&html, ".error-message"),
        "This page is for instructors and admins."
    );
}
