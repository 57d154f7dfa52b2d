//! The notifications lab against a real Kafka-protocol broker (the one `make test` starts, or a
//! broker of a test's own when it has to kill it), real PostgreSQL and real WebSockets.
//!
//! Each test server gets its own topic and consumer-group prefix and short retry delays
//! (300 ms, then 600 ms; 3 attempts), see `common::test_kafka`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use labdeck::config::KafkaArgs;
use labdeck::labs::learner::LabKeys;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::{TestApp, TestOptions, test_kafka};

const SECRET: &str = "test-secret-that-is-long-enough-0123456789";
/// Generous: the first consumer-group join on a fresh prefix takes a few seconds.
const PATIENCE: Duration = Duration::from_secs(60);

fn lab_key(namespace: &str) -> String {
    LabKeys::new(SECRET.as_bytes()).issue(namespace)
}

async fn spawn_with_kafka(kafka: KafkaArgs) -> TestApp {
    TestApp::spawn_with(TestOptions {
        kafka,
        ..TestOptions::default()
    })
    .await
}

/// A learner talking to the lab's API with a lab key, as curl would.
struct Learner<'a> {
    app: &'a TestApp,
    key: String,
}

impl<'a> Learner<'a> {
    fn new(app: &'a TestApp, namespace: &str) -> Learner<'a> {
        Learner {
            app,
            key: lab_key(namespace),
        }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, self.app.url(path))
            .header("X-Lab-Key", &self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn order(&self, item: &str) -> Value {
        let (status, body) = self
            .send(
                reqwest::Method::POST,
                "/labs/notifications/api/orders",
                Some(json!({ "item": item, "quantity": 2 })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn get(&self, path: &str) -> Value {
        let (status, body) = self.send(reqwest::Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body
    }

    async fn faults(&self, faults: Value) {
        let (status, body) = self
            .send(
                reqwest::Method::PUT,
                "/labs/notifications/api/faults",
                Some(faults),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }

    async fn notifications(&self) -> Vec<Value> {
        let body = self
            .get("/labs/notifications/api/notifications?after=0&limit=100")
            .await;
        body["notifications"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn journey(&self, event_id: &str) -> Vec<Value> {
        let (status, body) = self
            .send(
                reqwest::Method::GET,
                &format!("/labs/notifications/api/events/{event_id}"),
                None,
            )
            .await;
        if status != 200 {
            return Vec::new();
        }
        body["journey"].as_array().cloned().unwrap_or_default()
    }

    /// Polls `probe` until it returns `Some`, or fails the test after [`PATIENCE`].
    async fn eventually<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<T>>,
    {
        let started = Instant::now();
        loop {
            if let Some(value) = probe().await {
                return value;
            }
            assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn websocket(
        &self,
        after: i64,
    ) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
    {
        let url = self
            .app
            .url(&format!("/labs/notifications/ws?after={after}"))
            .replacen("http://", "ws://", 1);
        let mut request = url.into_client_request().expect("request");
        request
            .headers_mut()
            .insert("X-Lab-Key", self.key.parse().expect("header"));
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("websocket connects");
        socket
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next `notification` message (skipping `hello`), or `None` when nothing comes in `wait`.
async fn next_notification(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??;
        let Ok(Message::Text(text)) = message else {
            continue;
        };
        let value: Value = serde_json::from_str(&text).expect("json");
        if value["type"] == "notification" {
            return Some(value["notification"].clone());
        }
    }
}

fn stages<'a>(journey: &'a [Value], stage: &str) -> Vec<&'a Value> {
    journey.iter().filter(|s| s["stage"] == stage).collect()
}

#[tokio::test]
async fn an_order_reaches_the_learners_websocket_and_its_journey_is_recorded() {
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u101");
    let mut socket = learner.websocket(0).await;
    let order = learner.order("Espresso beans").await;
    let notification = next_notification(&mut socket, PATIENCE)
        .await
        .expect("a notification arrives over the WebSocket");
    assert_eq!(notification["seq"], 1);
    assert_eq!(notification["event_id"], order["event_id"]);
    assert!(
        notification["body"]
            .as_str()
            .is_some_and(|b| b.contains("2 × Espresso beans") && b.contains("$39.98")),
        "{notification}"
    );
    socket
        .send(Message::Text(
            json!({ "type": "ack", "seq": 1 }).to_string().into(),
        ))
        .await
        .expect("ack");
    let event_id = order["event_id"].as_str().expect("event id").to_string();
    let journey = learner
        .eventually("the acknowledgement in the journey", || async {
            let journey = learner.journey(&event_id).await;
            (!stages(&journey, "acked").is_empty()).then_some(journey)
        })
        .await;
    let order_of: Vec<&str> = journey
        .iter()
        .filter_map(|s| s["stage"].as_str())
        .filter(|s| {
            [
                "order_placed",
                "published",
                "consumed",
                "stored",
                "pushed",
                "acked",
            ]
            .contains(s)
        })
        .collect();
    assert_eq!(
        order_of,
        [
            "order_placed",
            "published",
            "consumed",
            "stored",
            "pushed",
            "acked"
        ]
    );
    let published = stages(&journey, "published")[0];
    assert!(
        published["detail"]["topic"]
            .as_str()
            .is_some_and(|t| t.ends_with("order-events"))
    );
    assert!(published["detail"]["offset"].as_i64().is_some());
    // The mail was written once, by the first attempt.
    let emails = learner
        .eventually("the confirmation mail", || async {
            let body = learner.get("/labs/notifications/api/emails").await;
            let emails = body["emails"].as_array().cloned().unwrap_or_default();
            (!emails.is_empty()).then_some(emails)
        })
        .await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["attempt"], 1);
}

#[tokio::test]
async fn a_failing_email_handler_ends_in_the_dlt_after_exactly_n_attempts_with_the_backoff_delays()
{
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u102");
    learner.faults(json!({ "email_mode": "always" })).await;
    let order = learner.order("Grinder").await;
    let event_id = order["event_id"].as_str().expect("event id").to_string();
    let dead = learner
        .eventually("a dead letter", || async {
            let body = learner.get("/labs/notifications/api/dead-letters").await;
            body["dead_letters"]
                .as_array()
                .and_then(|d| d.first().cloned())
        })
        .await;
    assert_eq!(dead["event_id"], order["event_id"]);
    assert_eq!(dead["handler"], "email");
    assert_eq!(dead["reason"], "exhausted");
    assert_eq!(dead["attempts"], 3, "max_attempts = 3 in the tests");
    let history = dead["history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    let topics: Vec<&str> = history.iter().filter_map(|h| h["topic"].as_str()).collect();
    assert!(topics[0].ends_with("order-events"), "{topics:?}");
    assert!(
        topics[1].ends_with("order-events-retry-300ms"),
        "{topics:?}"
    );
    assert!(
        topics[2].ends_with("order-events-retry-600ms"),
        "{topics:?}"
    );
    // Each retry waited at least its delay after the failure before it.
    let at: Vec<i64> = history.iter().filter_map(|h| h["at_ms"].as_i64()).collect();
    assert!(at[1] - at[0] >= 300, "{at:?}");
    assert!(at[2] - at[1] >= 600, "{at:?}");

    let journey = learner.journey(&event_id).await;
    let retries = stages(&journey, "retry_scheduled");
    let delays: Vec<i64> = retries
        .iter()
        .filter_map(|s| s["detail"]["delay_ms"].as_i64())
        .collect();
    assert_eq!(delays, [300, 600]);
    assert_eq!(stages(&journey, "handler_failed").len(), 3);
    assert_eq!(stages(&journey, "dead_lettered").len(), 1);
    // The push handler was not affected: the notification is there, once.
    assert_eq!(learner.notifications().await.len(), 1);
    let emails = learner.get("/labs/notifications/api/emails").await;
    assert_eq!(emails["emails"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn a_replay_from_the_dlt_delivers_exactly_once() {
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u103");
    learner.faults(json!({ "email_mode": "fatal" })).await;
    let order = learner.order("Kettle").await;
    let dead = learner
        .eventually("a fatal dead letter", || async {
            let body = learner.get("/labs/notifications/api/dead-letters").await;
            body["dead_letters"]
                .as_array()
                .and_then(|d| d.first().cloned())
        })
        .await;
    assert_eq!(dead["reason"], "fatal");
    assert_eq!(dead["attempts"], 1, "fatal errors are not retried");
    learner.faults(json!({ "email_mode": "ok" })).await;

    let id = dead["id"].as_i64().expect("id");
    let replay = format!("/labs/notifications/api/dead-letters/{id}/replay");
    let (status, body) = learner.send(reqwest::Method::POST, &replay, None).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = learner.send(reqwest::Method::POST, &replay, None).await;
    assert_eq!(status, 409, "a dead letter is replayed once: {body}");
    let emails = learner
        .eventually("the replayed mail", || async {
            let body = learner.get("/labs/notifications/api/emails").await;
            let emails = body["emails"].as_array().cloned().unwrap_or_default();
            (!emails.is_empty()).then_some(emails)
        })
        .await;
    assert_eq!(emails.len(), 1);
    assert_eq!(emails[0]["event_id"], order["event_id"]);

    // The replayed event also passes the push handler's dedupe if it is delivered again: put it
    // back on the main topic by hand, as a duplicate delivery after a rebalance would.
    let event_id = order["event_id"].as_str().expect("id").to_string();
    let state = app.state();
    let event: labdeck::labs::notifications::events::OrderEvent = serde_json::from_value(
        sqlx::query_scalar::<_, Value>(
            "SELECT payload FROM notify_outbox WHERE event_id = $1::uuid",
        )
        .bind(&event_id)
        .fetch_one(&state.db)
        .await
        .expect("outbox row"),
    )
    .expect("event");
    let delivery = labdeck::labs::notifications::events::Delivery::first();
    let topic = state.notifications.topics.main.clone();
    labdeck::labs::notifications::pipeline::publish_until_done(
        &state.notifications,
        &topic,
        &event,
        &delivery,
    )
    .await;
    learner
        .eventually("the duplicate to be seen", || async {
            let journey = learner.journey(&event_id).await;
            (stages(&journey, "duplicate").len() >= 2).then_some(())
        })
        .await;
    assert_eq!(
        learner.notifications().await.len(),
        1,
        "no second notification"
    );
    let body = learner.get("/labs/notifications/api/emails").await;
    assert_eq!(
        body["emails"].as_array().map(Vec::len),
        Some(1),
        "no second mail"
    );
}

#[tokio::test]
async fn fail_n_times_succeeds_on_attempt_n_plus_one_and_knobs_are_per_learner() {
    let app = spawn_with_kafka(test_kafka()).await;
    let alice = Learner::new(&app, "u104");
    let bob = Learner::new(&app, "u105");
    alice
        .faults(json!({ "email_mode": "fail_times", "fail_times": 2 }))
        .await;
    alice.order("Alice's tea").await;
    bob.order("Bob's coffee").await;
    let alice_mail = alice
        .eventually("alice's mail after two failures", || async {
            let body = alice.get("/labs/notifications/api/emails").await;
            body["emails"].as_array().and_then(|e| e.first().cloned())
        })
        .await;
    assert_eq!(alice_mail["attempt"], 3);
    let bob_mail = bob
        .eventually("bob's mail", || async {
            let body = bob.get("/labs/notifications/api/emails").await;
            body["emails"].as_array().and_then(|e| e.first().cloned())
        })
        .await;
    assert_eq!(
        bob_mail["attempt"], 1,
        "alice's knob never touched bob's events"
    );
    // Neither sees the other's notifications, mails or dead letters.
    let alice_items: Vec<String> = alice
        .notifications()
        .await
        .iter()
        .filter_map(|n| n["body"].as_str().map(String::from))
        .collect();
    assert!(
        alice_items.iter().all(|b| b.contains("Alice")),
        "{alice_items:?}"
    );
    let bob_faults = bob.get("/labs/notifications/api/faults").await;
    assert_eq!(bob_faults["email_mode"], "ok");
    let (status, _) = bob
        .send(
            reqwest::Method::GET,
            &format!(
                "/labs/notifications/api/events/{}",
                alice_mail["event_id"].as_str().expect("id")
            ),
            None,
        )
        .await;
    assert_eq!(status, 404, "bob cannot read alice's journey");
}

#[tokio::test]
async fn a_disconnected_client_catches_up_with_no_gaps_or_duplicates() {
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u106");
    let mut socket = learner.websocket(0).await;
    learner.order("one").await;
    learner.order("two").await;
    let mut seen = Vec::new();
    for _ in 0..2 {
        let n = next_notification(&mut socket, PATIENCE)
            .await
            .expect("live");
        seen.push(n["seq"].as_i64().expect("seq"));
    }
    socket.close(None).await.ok();
    drop(socket);
    for item in ["three", "four", "five"] {
        learner.order(item).await;
    }
    learner
        .eventually("five stored", || async {
            (learner.notifications().await.len() == 5).then_some(())
        })
        .await;
    let last = *seen.last().expect("seen");
    let mut socket = learner.websocket(last).await;
    for _ in 0..3 {
        let n = next_notification(&mut socket, Duration::from_secs(10))
            .await
            .expect("caught up");
        seen.push(n["seq"].as_i64().expect("seq"));
    }
    assert_eq!(
        next_notification(&mut socket, Duration::from_millis(700)).await,
        None,
        "nothing twice"
    );
    assert_eq!(seen, [1, 2, 3, 4, 5]);

    // The same over HTTP, two at a time, from a server-issued cursor.
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let body = learner
            .get(&format!(
                "/labs/notifications/api/notifications?after={after}&limit=2"
            ))
            .await;
        paged.extend(
            body["notifications"]
                .as_array()
                .expect("rows")
                .iter()
                .filter_map(|n| n["seq"].as_i64()),
        );
        assert_eq!(body["head"], 5);
        after = body["next_after"].as_i64().expect("cursor");
        if body["has_more"] != true {
            break;
        }
    }
    assert_eq!(paged, [1, 2, 3, 4, 5]);
    let (status, body) = learner
        .send(
            reqwest::Method::GET,
            "/labs/notifications/api/notifications?after=2026-11-27T10:00:00Z",
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("cursor"))
    );

    // Read / unread.
    let (_, body) = learner
        .send(
            reqwest::Method::POST,
            "/labs/notifications/api/notifications/read",
            Some(json!({ "seqs": [1, 2] })),
        )
        .await;
    assert_eq!(body["marked"], 2);
    assert_eq!(body["unread"], 3);
    let (_, body) = learner
        .send(
            reqwest::Method::POST,
            "/labs/notifications/api/notifications/read",
            None,
        )
        .await;
    assert_eq!(body["unread"], 0);
}

#[tokio::test]
async fn a_paused_consumer_parks_events_and_delivers_them_in_order_on_resume() {
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u107");
    learner.faults(json!({ "paused": true })).await;
    let first = learner.order("first").await;
    learner.order("second").await;
    let event_id = first["event_id"].as_str().expect("id").to_string();
    learner
        .eventually("the event to be parked", || async {
            (!stages(&learner.journey(&event_id).await, "parked").is_empty()).then_some(())
        })
        .await;
    assert!(learner.notifications().await.is_empty());
    let (status, body) = learner
        .send(
            reqwest::Method::PUT,
            "/labs/notifications/api/faults",
            Some(json!({ "paused": false })),
        )
        .await;
    assert_eq!(status, 200);
    let resumed = body["resumed"].as_i64().expect("resumed");
    let all = learner
        .eventually("both delivered", || async {
            let all = learner.notifications().await;
            (all.len() == 2).then_some(all)
        })
        .await;
    assert!(resumed >= 1);
    assert!(all[0]["body"].as_str().is_some_and(|b| b.contains("first")));
    assert!(
        all[1]["body"]
            .as_str()
            .is_some_and(|b| b.contains("second"))
    );
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_page_names_the_broker() {
    let app = spawn_with_kafka(test_kafka()).await;
    let learner = Learner::new(&app, "u108");
    let orders = "/labs/notifications/api/orders";
    for (body, status, needle) in [
        (json!({ "item": "" }), 422, "item"),
        (json!({ "item": "x", "quantity": 0 }), 422, "quantity"),
        (json!({ "item": "x", "quantity": "lots" }), 422, "quantity"),
        (json!({ "item": "x".repeat(101) }), 422, "100"),
        (json!([1, 2]), 400, "JSON object"),
    ] {
        let (got, answer) = learner
            .send(reqwest::Method::POST, orders, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(needle)),
            "{answer}"
        );
    }
    let (status, _) = learner
        .send(
            reqwest::Method::PUT,
            "/labs/notifications/api/faults",
            Some(json!({ "email_mode": "sometimes" })),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = learner
        .send(
            reqwest::Method::POST,
            "/labs/notifications/api/dead-letters/999999/replay",
            None,
        )
        .await;
    assert_eq!(status, 409);
    // A forged lab key is refused, and a form post without a CSRF token too.
    let response = reqwest::Client::new()
        .post(app.url(orders))
        .header("X-Lab-Key", "u108.forged")
        .json(&json!({ "item": "x" }))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 401);
    let response = reqwest::Client::new()
        .post(app.url("/labs/notifications/orders"))
        .form(&[("item", "x"), ("quantity", "1")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 403);
    // A WebSocket handshake from another site's page is refused.
    let mut request = app
        .url("/labs/notifications/ws")
        .replacen("http://", "ws://", 1)
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().expect("origin"));
    assert!(tokio_tungstenite::connect_async(request).await.is_err());

    let html = app.get_html("/labs/notifications").await;
    let mode = crate::common::text(&html, "[data-kafka-mode]");
    assert!(mode.contains("Kafka cluster at"), "{mode}");
}

#[tokio::test]
async fn with_kafka_switched_off_the_lab_says_so() {
    let app = TestApp::spawn().await;
    let learner = Learner::new(&app, "u109");
    let (status, body) = learner
        .send(
            reqwest::Method::POST,
            "/labs/notifications/api/orders",
            Some(json!({ "item": "x" })),
        )
        .await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "kafka_disabled");
    let html = app.get_html("/labs/notifications").await;
    assert!(crate::common::text(&html, "[data-kafka-mode]").contains("switched off"));
}

// ---------------------------------------------------------------------------------------------
// A broker of the test's own, so it can be killed: tansu with its log in SQLite on disk.

struct OwnBroker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

fn tansu_binary() -> PathBuf {
    std::env::var_os("LABDECK_TEST_TANSU")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache/tansu/bin/tansu"))
        })
        .filter(|p| p.exists())
        .expect("tansu is installed (make test installs it; see scripts/lib.sh ensure_kafka)")
}

impl OwnBroker {
    fn start() -> OwnBroker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let dir = std::env::temp_dir().join(format!("labdeck-tansu-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let mut broker = OwnBroker {
            child: None,
            port,
            dir,
        };
        broker.restart();
        broker
    }

    fn restart(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(tansu_binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "sqlite://tansu.db",
            ])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu starts");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("tansu did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn killing_and_restarting_the_broker_mid_stream_loses_no_notification() {
    let mut broker = OwnBroker::start();
    let app = spawn_with_kafka(KafkaArgs {
        brokers: Some(format!("127.0.0.1:{}", broker.port)),
        ..test_kafka()
    })
    .await;
    let learner = Learner::new(&app, "u110");
    let mut placed = Vec::new();
    for i in 0..5 {
        placed.push(learner.order(&format!("before {i}")).await["event_id"].clone());
    }
    learner
        .eventually("the first notification", || async {
            (!learner.notifications().await.is_empty()).then_some(())
        })
        .await;
    broker.kill();
    // Orders are still taken while the broker is gone: they wait in the outbox.
    for i in 0..5 {
        placed.push(learner.order(&format!("during {i}")).await["event_id"].clone());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    broker.restart();
    let all = learner
        .eventually("all ten notifications", || async {
            let all = learner.notifications().await;
            (all.len() >= 10).then_some(all)
        })
        .await;
    // Give any duplicate a chance to show up, then check there is none.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all_again = learner.notifications().await;
    assert_eq!(all_again.len(), 10, "no duplicates");
    let seqs: Vec<i64> = all.iter().filter_map(|n| n["seq"].as_i64()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    let mut got: Vec<String> = all
        .iter()
        .filter_map(|n| n["event_id"].as_str().map(String::from))
        .collect();
    let mut want: Vec<String> = placed
        .iter()
        .filter_map(|e| e.as_str().map(String::from))
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "every order's notification, exactly once");
}

#[tokio::test]
async fn without_kafka_brokers_the_embedded_mock_cluster_runs_the_pipeline() {
    // What `make run` does on a fresh machine: no broker installed, librdkafka's in-process
    // mock cluster instead. (Everything else in this file runs on a real broker.)
    let app = spawn_with_kafka(KafkaArgs {
        brokers: None,
        ..test_kafka()
    })
    .await;
    let html = app.get_html("/labs/notifications").await;
    assert!(crate::common::text(&html, "[data-kafka-mode]").contains("embedded broker"));
    let learner = Learner::new(&app, "u111");
    learner
        .faults(json!({ "email_mode": "fail_times", "fail_times": 1 }))
        .await;
    learner.order("Mock beans").await;
    let mail = learner
        .eventually("the mail after one retry", || async {
            let body = learner.get("/labs/notifications/api/emails").await;
            body["emails"].as_array().and_then(|e| e.first().cloned())
        })
        .await;
    assert_eq!(mail["attempt"], 2);
    assert_eq!(learner.notifications().await.len(), 1);
}
