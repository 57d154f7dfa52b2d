//! The rate-limiter lab against real Redis: the demo API's headers and bodies, every algorithm in
//! Redis against its pure reference, two servers sharing one limit, Redis dying mid-run, learner
//! isolation, the live event stream, and the page's forms with and without htmx.

use std::time::Duration;

use futures::future::join_all;
use labdeck::labs::rate_limiter::Settings;
use labdeck::labs::rate_limiter::algorithms::{self, Algorithm, Penalized};
use scraper::Html;

use crate::common::{OwnRedis, TestApp, TestOptions, attr, select, text};

const LAB: &str = "/labs/rate-limiter";
const API: &str = "/labs/rate-limiter/api/demo";

/// Saves lab settings for this client (unnamed fields keep the defaults).
async fn configure(app: &TestApp, fields: &[(&str, &str)]) {
    let mut form: Vec<(&str, &str)> = vec![
        ("algorithm", "sliding_log"),
        ("limit", "10"),
        ("window_secs", "60"),
        ("burst", ""),
        ("cost", "1"),
        ("key_type", "ip"),
        ("block_secs", "0"),
        ("policy", "insurance"),
    ];
    for (name, value) in fields {
        if let Some(field) = form.iter_mut().find(|(n, _)| n == name) {
            field.1 = value;
        }
    }
    let response = app.post_form("/labs/rate-limiter/settings", &form).await;
    assert_eq!(response.status(), 303, "settings saved");
    assert_eq!(
        response.headers()["location"],
        "/labs/rate-limiter?saved=1#settings"
    );
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii").to_string())
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// The lab key printed in this client's curl example.
async fn lab_key(app: &TestApp) -> String {
    let html = app.get_html(LAB).await;
    let curl = text(&html, "pre.rl-curl");
    curl.split("X-Lab-Key: ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("lab key in the curl example")
        .to_string()
}

/// Status codes of `n` concurrent API calls with a lab key.
async fn fire(app: &TestApp, key: &str, n: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let calls = (0..n).map(|_| client.get(app.url(API)).header("X-Lab-Key", key).send());
    join_all(calls)
        .await
        .into_iter()
        .map(|r| r.expect("response").status().as_u16())
        .collect()
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

#[tokio::test]
async fn the_lab_page_has_settings_controls_a_live_view_a_replay_and_the_challenge_link() {
    let app = TestApp::spawn().await;
    let response = app.get(LAB).await;
    assert_eq!(response.status(), 200);
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_string())
        .find(|c| c.starts_with("labdeck_lab="))
        .expect("anonymous lab cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let html = Html::parse_document(&response.text().await.expect("body"));
    assert_eq!(
        attr(&html, "#rl-algorithm option[selected]", "value"),
        "sliding_log"
    );
    assert_eq!(
        attr(&html, "#rl-policy option[selected]", "value"),
        "insurance"
    );
    assert_eq!(select(&html, "#rl-burst input[name=csrf_token]").len(), 1);
    assert_eq!(
        attr(&html, "[data-live-url]", "data-live-url"),
        "/labs/rate-limiter/events"
    );
    assert_eq!(select(&html, "#replay .rl-lane").len(), 5);
    assert_eq!(
        attr(&html, ".lab-actions a.button", "href"),
        "/labs/rate-limiter/challenge"
    );
    assert!(text(&html, "pre.rl-curl").contains("/labs/rate-limiter/api/demo"));
    assert!(select(&html, "script[src^='/static/js/rate-limiter.js?v=']").len() == 1);
    // The lessons now link to the lab.
    let lesson = app.get_html("/lessons/distributed-rate-limiting").await;
    assert_eq!(attr(&lesson, ".lab-link a", "href"), LAB);
}

#[tokio::test]
async fn the_demo_api_sends_ratelimit_headers_and_a_json_429_that_says_when_to_retry() {
    let app = TestApp::spawn().await;
    configure(&app, &[("limit", "3"), ("window_secs", "60")]).await;
    for remaining in [2, 1, 0] {
        let response = app.get(API).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            header(&response, "ratelimit-policy"),
            "\"default\";q=3;w=60"
        );
        let limit = header(&response, "ratelimit");
        assert!(
            limit.starts_with(&format!("\"default\";r={remaining};t=")),
            "{limit}"
        );
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            remaining.to_string()
        );
        assert_eq!(header(&response, "cache-control"), "no-store");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["ok"], true);
        assert_eq!(body["store"], "redis");
    }
    let refused = app.get(API).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "content-type"), "application/json");
    let retry: u64 = header(&refused, "retry-after").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(header(&refused, "ratelimit").starts_with("\"default\";r=0;t="));
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "rate_limited");
    assert_eq!(body["retry_after_seconds"], retry);
    assert_eq!(body["remaining"], 0);
    assert_eq!(body["algorithm"], "sliding_log");
    assert_eq!(body["key"], "ip:127.0.0.1");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.contains(&format!("Retry in {retry} s")),
        "{message}"
    );

    let bad_cost = app.get(&format!("{API}?cost=4")).await;
    assert_eq!(bad_cost.status(), 400);
    let body: serde_json::Value = bad_cost.json().await.expect("json");
    assert_eq!(body["error"], "invalid_cost");
}

#[tokio::test]
async fn weighted_costs_block_durations_and_api_keys_shape_the_decisions() {
    let app = TestApp::spawn().await;
    configure(
        &app,
        &[
            ("algorithm", "token_bucket"),
            ("limit", "10"),
            ("burst", "10"),
            ("key_type", "api_key"),
            ("block_secs", "120"),
        ],
    )
    .await;
    let missing = app.get(API).await;
    assert_eq!(missing.status(), 401);
    let body: serde_json::Value = missing.json().await.expect("json");
    assert_eq!(body["error"], "api_key_required");

    let call = async |key: &str, cost: u32| {
        app.client
            .get(app.url(&format!("{API}?cost={cost}")))
            .header("X-API-Key", key)
            .send()
            .await
            .expect("response")
    };
    let heavy = call("alice", 8).await;
    assert_eq!(heavy.status(), 200);
    assert!(header(&heavy, "ratelimit").starts_with("\"default\";r=2;"));
    // 8 + 3 > 10: denied, and the block keeps alice out for two minutes whatever the bucket says.
    let over = call("alice", 3).await;
    assert_eq!(over.status(), 429);
    assert_eq!(header(&over, "retry-after"), "120");
    let body: serde_json::Value = over.json().await.expect("json");
    assert_eq!(body["blocked"], true);
    assert_eq!(
        call("alice", 1).await.status(),
        429,
        "blocked even for cost 1"
    );
    // Another API key has its own bucket.
    let bob = call("bob", 10).await;
    assert_eq!(bob.status(), 200);
    let body: serde_json::Value = bob.json().await.expect("json");
    assert!(body["key"].as_str().expect("key").starts_with("key:"));
    assert_ne!(body["key"], "key:bob", "API keys are hashed, never stored");
}

/// A deterministic trace: (virtual time, client, cost).
fn trace(seed: u64, len: usize) -> Vec<(u64, &'static str, u32)> {
    let mut state = seed;
    let mut next = move || {
        // xorshift64: good enough to vary gaps, clients and costs.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut at = 1_700_000_000_000u64 + next() % 60_000;
    (0..len)
        .map(|_| {
            at += match next() % 10 {
                0..=5 => next() % 400,
                6..=8 => next() % 6_000,
                _ => next() % 40_000,
            };
            let client = if next() % 3 == 0 {
                "ip:10.0.0.2"
            } else {
                "ip:10.0.0.1"
            };
            let cost = 1 + (next() % 3) as u32;
            (at, client, cost)
        })
        .collect()
}

#[tokio::test]
async fn every_algorithm_in_redis_agrees_with_its_pure_reference_decision_for_decision() {
    let app = TestApp::spawn().await;
    let store = &app.state().rate_limiter.store;
    for (run, block_secs) in [(0u64, 0u32), (1, 5)] {
        for algorithm in Algorithm::ALL {
            let settings = Settings {
                algorithm,
                limit: 7,
                window_secs: 10,
                burst: 9,
                block_secs,
                rev: run,
                ..Settings::default()
            };
            let mut reference = Penalized::new(
                algorithms::build(algorithm, settings.config()),
                settings.block_ms(),
            );
            let namespace = format!("trace-{}", uuid::Uuid::new_v4().simple());
            let (mut allowed, mut denied, mut blocked) = (0, 0, 0);
            for (i, (at, client, cost)) in trace(17 + run, 250).into_iter().enumerate() {
                let expected = reference.check(client, at, cost);
                allowed += usize::from(expected.decision.allowed);
                denied += usize::from(!expected.decision.allowed);
                blocked += usize::from(expected.blocked);
                let got = store
                    .hit(&namespace, &settings, client, cost, Some(at))
                    .await
                    .expect("redis answers");
                assert_eq!(got.now_ms, at, "the script used the given clock");
                assert_eq!(
                    got.verdict, expected,
                    "{algorithm:?} (block {block_secs} s), hit #{i} at {at} for {client} cost {cost}"
                );
            }
            // The trace must exercise both answers (and blocks, when there is a block duration).
            assert!(
                allowed > 50 && denied > 20,
                "{algorithm:?}: {allowed}/{denied}"
            );
            assert_eq!(blocked > 0, block_secs > 0, "{algorithm:?}");
        }
    }
}

#[tokio::test]
async fn redis_time_drives_live_decisions() {
    let app = TestApp::spawn().await;
    let store = &app.state().rate_limiter.store;
    let settings = Settings::default();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    let hit = store
        .hit("clock-check", &settings, "ip:10.0.0.1", 1, None)
        .await
        .expect("redis answers");
    // Same host: Redis's clock and ours agree to well within a minute.
    assert!(
        hit.now_ms.abs_diff(before) < 60_000,
        "{} vs {before}",
        hit.now_ms
    );
    assert!(hit.verdict.decision.allowed);
}

#[tokio::test]
async fn two_servers_sharing_one_redis_enforce_exactly_one_limit() {
    let shared = format!("labdeck-test:shared-{}:", uuid::Uuid::new_v4().simple());
    let options = || TestOptions {
        redis_prefix: Some(shared.clone()),
        ..Default::default()
    };
    let a = TestApp::spawn_with(options()).await;
    let b = TestApp::spawn_with(options()).await;
    for algorithm in ["sliding_log", "gcra", "fixed_window"] {
        configure(
            &a,
            &[
                ("algorithm", algorithm),
                ("limit", "10"),
                ("window_secs", "3600"),
            ],
        )
        .await;
        let key = lab_key(&a).await;
        assert_eq!(key, lab_key(&a).await, "lab keys are stable");

        // Ten through A use up the quota B enforces too.
        assert_eq!(count(&fire(&a, &key, 10).await, 200), 10, "{algorithm}");
        assert_eq!(count(&fire(&b, &key, 5).await, 429), 5, "{algorithm}");

        // Concurrently through both: still exactly ten between them.
        configure(
            &a,
            &[
                ("algorithm", algorithm),
                ("limit", "10"),
                ("window_secs", "3600"),
            ],
        )
        .await;
        let (from_a, from_b) = tokio::join!(fire(&a, &key, 20), fire(&b, &key, 20));
        let allowed = count(&from_a, 200) + count(&from_b, 200);
        assert_eq!(allowed, 10, "{algorithm}: {from_a:?} {from_b:?}");
        assert_eq!(count(&from_a, 429) + count(&from_b, 429), 30);
    }
}

#[tokio::test]
async fn when_redis_stops_mid_run_each_failure_policy_applies_and_nothing_answers_500() {
    let mut redis = OwnRedis::start();
    let app = TestApp::spawn_with(TestOptions {
        redis_url: redis.url(),
        ..Default::default()
    })
    .await;
    let learners = [
        ("fail_open", app.other_client()),
        ("fail_closed", app.other_client()),
        ("insurance", app.other_client()),
    ];
    for (policy, learner) in &learners {
        configure(
            learner,
            &[
                ("algorithm", "fixed_window"),
                ("limit", "3"),
                ("window_secs", "3600"),
                ("policy", policy),
            ],
        )
        .await;
        assert_eq!(learner.get(API).await.status(), 200);
    }

    redis.stop();

    for (policy, learner) in &learners {
        let mut statuses = Vec::new();
        for _ in 0..6 {
            // A hung request fails the test instead of hanging it.
            let response = tokio::time::timeout(Duration::from_secs(5), learner.get(API))
                .await
                .expect("answered without hanging");
            let status = response.status().as_u16();
            statuses.push(status);
            match *policy {
                "fail_open" => {
                    assert!(response.headers().get("ratelimit").is_none());
                    let body: serde_json::Value = response.json().await.expect("json");
                    assert_eq!(body["store"], "none");
                }
                "fail_closed" => {
                    assert_eq!(header(&response, "retry-after"), "5");
                    let body: serde_json::Value = response.json().await.expect("json");
                    assert_eq!(body["error"], "rate_limiter_unavailable");
                }
                _ => {
                    assert!(header(&response, "ratelimit-policy").contains("q=3"));
                    let body: serde_json::Value = response.json().await.expect("json");
                    assert_eq!(body["store"], "memory");
                }
            }
        }
        let expected: Vec<u16> = match *policy {
            "fail_open" => vec![200; 6],
            "fail_closed" => vec![503; 6],
            // The insurance limiter counts from zero in this process: three more, then 429s.
            _ => vec![200, 200, 200, 429, 429, 429],
        };
        assert_eq!(statuses, expected, "{policy}");
    }

    // The page still works and says what is going on; saving cannot work and says so.
    let (_, learner) = &learners[0];
    let page = learner.get_html(LAB).await;
    assert!(text(&page, ".lab .form-error").contains("unreachable"));
    assert_eq!(
        attr(&page, "#rl-policy option[selected]", "value"),
        "fail_open",
        "the last settings seen are still in force"
    );
    let save = learner
        .post_form(
            "/labs/rate-limiter/settings",
            &[
                ("algorithm", "gcra"),
                ("limit", "5"),
                ("window_secs", "60"),
                ("cost", "1"),
                ("key_type", "ip"),
                ("block_secs", "0"),
                ("policy", "fail_open"),
            ],
        )
        .await;
    assert_eq!(save.status(), 503);
    let burst = learner
        .post_form("/labs/rate-limiter/burst", &[("count", "5")])
        .await;
    assert_eq!(burst.status(), 200);
    let html = Html::parse_document(&burst.text().await.expect("body"));
    assert_eq!(select(&html, ".rl-cell.is-failed-open").len(), 5);
}

#[tokio::test]
async fn learners_never_see_each_others_limits_or_counters() {
    let app = TestApp::spawn().await;
    let ann = app.other_client();
    let ben = app.other_client();
    configure(&ann, &[("limit", "1")]).await;
    assert_eq!(ann.get(API).await.status(), 200);
    assert_eq!(ann.get(API).await.status(), 429);

    // Same IP, same server, different learner: Ben has his own (default) limit and counters.
    let response = ben.get(API).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "ratelimit-policy"),
        "\"default\";q=10;w=10"
    );
    let ann_key = lab_key(&ann).await;
    let ben_key = lab_key(&ben).await;
    assert_ne!(ann_key, ben_key);

    // A lab key acts as its learner from anywhere; a forged one is refused.
    assert_eq!(fire(&app, &ann_key, 1).await, vec![429]);
    let last = if ann_key.ends_with('x') { "y" } else { "x" };
    let forged = format!("{}{last}", &ann_key[..ann_key.len() - 1]);
    let refused = reqwest::Client::new()
        .get(app.url(API))
        .header("X-Lab-Key", forged)
        .send()
        .await
        .expect("response");
    assert_eq!(refused.status(), 401);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert_eq!(body["error"], "invalid_lab_key");

    // A logged-in learner is keyed by account, not by browser.
    ben.sign_up("ben@example.com").await;
    let as_user = lab_key(&ben).await;
    assert!(as_user.starts_with('u'), "{as_user}");
}

#[tokio::test]
async fn the_live_stream_delivers_each_decision_as_it_happens() {
    let app = TestApp::spawn().await;
    configure(&app, &[("limit", "1")]).await;
    let mut stream = app
        .client
        .get(app.url("/labs/rate-limiter/events"))
        .send()
        .await
        .expect("stream");
    assert_eq!(header(&stream, "content-type"), "text/event-stream");
    assert_eq!(app.get(API).await.status(), 200);
    assert_eq!(app.get(API).await.status(), 429);

    let mut received = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received.matches("event: decision").count() < 2 {
        let chunk = tokio::time::timeout_at(deadline, stream.chunk())
            .await
            .expect("events arrive within 5 s")
            .expect("stream readable")
            .expect("stream open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: state"), "{received}");
    let allowed = received.find("rl-event is-allowed").expect("allowed row");
    let denied = received.find("rl-event is-denied").expect("denied row");
    assert!(allowed < denied, "in order");
    assert!(received.contains("ip:127.0.0.1"));

    // The page shows the same decisions on a fresh load (newest first).
    let html = app.get_html(LAB).await;
    let rows: Vec<String> = select(&html, ".rl-events .rl-event .rl-outcome")
        .iter()
        .map(|e| e.text().collect())
        .collect();
    assert_eq!(rows, ["denied", "allowed"]);
}

#[tokio::test]
async fn bursts_run_through_the_real_limiter_as_a_page_or_an_htmx_fragment() {
    let app = TestApp::spawn().await;
    configure(
        &app,
        &[
            ("algorithm", "fixed_window"),
            ("limit", "5"),
            ("window_secs", "3600"),
        ],
    )
    .await;
    let page = app
        .post_form("/labs/rate-limiter/burst", &[("count", "8")])
        .await;
    assert_eq!(page.status(), 200);
    let html = Html::parse_document(&page.text().await.expect("body"));
    assert_eq!(select(&html, "#burst-result .rl-cell.is-allowed").len(), 5);
    assert_eq!(select(&html, "#burst-result .rl-cell.is-denied").len(), 3);
    assert_eq!(text(&html, "[data-count=denied]"), "3 denied");

    // IPv6 clients rotating inside one /56 share one key, so rotation buys nothing.
    configure(
        &app,
        &[
            ("algorithm", "fixed_window"),
            ("limit", "5"),
            ("window_secs", "3600"),
        ],
    )
    .await;
    let fragment = app
        .post_htmx(
            "/labs/rate-limiter/burst",
            &[("count", "8"), ("clients", "ipv6")],
        )
        .await;
    assert_eq!(fragment.status(), 200);
    assert!(header(&fragment, "vary").contains("HX-Request"));
    let body = fragment.text().await.expect("body");
    assert!(!body.contains("<html"), "just the fragment");
    let html = Html::parse_fragment(&body);
    assert_eq!(select(&html, ".rl-cell.is-allowed").len(), 5);
    assert_eq!(
        text(&html, ".rl-burst-result .muted code"),
        "ip:2001:db8:5eed:4200::/56"
    );

    let too_long = app
        .post_form(
            "/labs/rate-limiter/burst",
            &[("count", "500"), ("interval_ms", "1000")],
        )
        .await;
    assert_eq!(too_long.status(), 400);
}

#[tokio::test]
async fn invalid_settings_are_explained_and_keep_what_was_typed() {
    let app = TestApp::spawn().await;
    let fields = [
        ("algorithm", "token_bucket"),
        ("limit", "20"),
        ("window_secs", "60"),
        ("burst", "4"),
        ("cost", "5"),
        ("key_type", "ip"),
        ("block_secs", "0"),
        ("policy", "fail_closed"),
    ];
    let page = app.post_form("/labs/rate-limiter/settings", &fields).await;
    assert_eq!(page.status(), 422);
    let html = Html::parse_document(&page.text().await.expect("body"));
    assert!(text(&html, "#rl-settings .form-error").contains("from 1 to 4"));
    assert_eq!(attr(&html, "#rl-limit", "value"), "20");
    assert_eq!(
        attr(&html, "#rl-policy option[selected]", "value"),
        "fail_closed"
    );

    let fragment = app.post_htmx("/labs/rate-limiter/settings", &fields).await;
    assert_eq!(fragment.status(), 422);
    let html = Html::parse_fragment(&fragment.text().await.expect("body"));
    assert_eq!(select(&html, "form#rl-settings .form-error").len(), 1);

    let mut fixed = fields;
    fixed[4] = ("cost", "2");
    let saved = app.post_htmx("/labs/rate-limiter/settings", &fixed).await;
    assert_eq!(saved.status(), 200);
    let html = Html::parse_fragment(&saved.text().await.expect("body"));
    assert_eq!(select(&html, "#rl-settings .form-ok").len(), 1);
    assert_eq!(
        attr(&html, "#rl-algorithm option[selected]", "value"),
        "token_bucket"
    );
}

#[tokio::test]
async fn clearing_counters_starts_the_limit_over() {
    let app = TestApp::spawn().await;
    configure(&app, &[("limit", "1")]).await;
    assert_eq!(app.get(API).await.status(), 200);
    assert_eq!(app.get(API).await.status(), 429);
    let reset = app.post_form("/labs/rate-limiter/reset", &[]).await;
    assert_eq!(reset.status(), 303);
    assert_eq!(app.get(API).await.status(), 200);
    let fragment = app.post_htmx("/labs/rate-limiter/reset", &[]).await;
    assert_eq!(fragment.status(), 200);
    assert!(
        fragment
            .text()
            .await
            .expect("body")
            .contains("Counters cleared")
    );
}

#[tokio::test]
async fn the_replay_shows_the_fixed_window_boundary_burst_side_by_side() {
    let app = TestApp::spawn().await;
    configure(&app, &[("limit", "10"), ("window_secs", "10")]).await;
    let response = app
        .client
        .get(app.url("/labs/rate-limiter?pattern=boundary&seed=3"))
        .header("HX-Request", "true")
        .send()
        .await
        .expect("replay");
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    assert!(!body.contains("<html"));
    let html = Html::parse_fragment(&body);
    let busiest = |algorithm: &str| {
        text(
            &html,
            &format!("[data-algorithm={algorithm}] [data-lane=busiest]"),
        )
    };
    assert_eq!(busiest("fixed_window"), "20");
    assert_eq!(busiest("sliding_log"), "10");
    assert_eq!(
        select(&html, "[data-algorithm=fixed_window] .rl-over").len(),
        1
    );
    assert_eq!(
        select(&html, "[data-algorithm=sliding_log] .rl-over").len(),
        0
    );
    assert_eq!(
        select(&html, "[data-algorithm=gcra] .rl-tick").len(),
        select(&html, "[data-algorithm=token_bucket] .rl-tick").len()
    );
    // Without JavaScript the same replay is the whole page.
    let page = app
        .get_html("/labs/rate-limiter?pattern=steady&seed=3")
        .await;
    assert_eq!(
        attr(&page, "#rl-pattern option[selected]", "value"),
        "steady"
    );
}
