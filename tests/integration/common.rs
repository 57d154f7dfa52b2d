//! Shared test harness: every test gets its own PostgreSQL database (created from the server in
//! `LABDECK_TEST_DATABASE_URL`, dropped when the test ends) and its own Redis key prefix (whose
//! keys are deleted when the test ends), and talks to a real labdeck server bound to a free port
//! over HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use labdeck::app::{self, AppState, RunningServer};
use labdeck::config::{Config, DatabaseArgs, KafkaArgs, ServeArgs, UploadArgs};
use reqwest::redirect::Policy;
use scraper::{Html, Selector};

pub fn admin_database_url() -> String {
    std::env::var("LABDECK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

pub fn redis_url() -> String {
    std::env::var("LABDECK_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_string())
}

/// The real Kafka-protocol broker the test script starts; every test server gets its own topic
/// and consumer-group prefix on it, and short retry delays.
pub fn test_kafka() -> KafkaArgs {
    KafkaArgs {
        brokers: Some(
            std::env::var("LABDECK_TEST_KAFKA_BROKERS")
                .unwrap_or_else(|_| "127.0.0.1:19092".to_string()),
        ),
        prefix: format!("t{}.", uuid::Uuid::new_v4().simple()),
        retry_base_ms: 300,
        retry_multiplier: 2,
        max_attempts: 3,
        ..KafkaArgs::default()
    }
}

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `postgres://…/<name>` from the admin URL.
fn database_url_for(name: &str) -> String {
    let admin = admin_database_url();
    let (base, query) = match admin.split_once('?') {
        Some((b, q)) => (b.to_string(), format!("?{q}")),
        None => (admin.clone(), String::new()),
    };
    let root = base
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(base);
    format!("{root}/{name}{query}")
}

pub struct TestOptions {
    pub content_dir: PathBuf,
    pub dev: bool,
    pub redis_url: String,
    pub grader_threads: usize,
    pub grader_queue: usize,
    /// Share Redis state with another server (by default each server gets its own prefix).
    pub redis_prefix: Option<String>,
    /// Kafka for the notifications lab: off unless a test asks for [`test_kafka`].
    pub kafka: KafkaArgs,
    /// Upload-lab limits; the storage folder is always a fresh one per server.
    pub upload: UploadArgs,
}

impl Default for TestOptions {
    fn default() -> Self {
        TestOptions {
            content_dir: manifest_dir().join("content"),
            dev: false,
            redis_url: redis_url(),
            grader_threads: 2,
            grader_queue: 4,
            redis_prefix: None,
            kafka: KafkaArgs {
                disabled: true,
                ..KafkaArgs::default()
            },
            upload: UploadArgs::default(),
        }
    }
}

/// The server, its database and its Redis keys; both are removed when the last client goes away.
struct ServerGuard {
    server: RunningServer,
    database_name: String,
    redis_url: String,
    redis_prefix: String,
    upload_dir: PathBuf,
}

#[derive(Clone)]
pub struct TestApp {
    guard: Arc<ServerGuard>,
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> TestApp {
        let database_name = format!("labdeck_test_{}", uuid::Uuid::new_v4().simple());
        let database_url = database_url_for(&database_name);
        let redis_prefix = options
            .redis_prefix
            .unwrap_or_else(|| format!("labdeck-test:{database_name}:"));
        let upload_dir = std::env::temp_dir().join(&database_name).join("uploads");
        let args = ServeArgs {
            db: DatabaseArgs {
                database_url: database_url.clone(),
            },
            redis_url: options.redis_url.clone(),
            redis_prefix: redis_prefix.clone(),
            bind: "127.0.0.1:0".parse().expect("addr"),
            public_url: None,
            content_dir: options.content_dir,
            static_dir: manifest_dir().join("static"),
            labs_dir: manifest_dir().join("labs"),
            grader_threads: options.grader_threads,
            grader_queue: options.grader_queue,
            dev: options.dev,
            secret: Some("test-secret-that-is-long-enough-0123456789".to_string()),
            kafka: options.kafka,
            upload: Box::new(UploadArgs {
                dir: upload_dir.clone(),
                ..options.upload
            }),
        };
        let config = Config::from_args(args).expect("config");
        let server = app::start(config).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestApp {
            base,
            client: new_client(),
            database_url,
            guard: Arc::new(ServerGuard {
                server,
                database_name,
                redis_url: options.redis_url,
                redis_prefix,
                upload_dir,
            }),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn get_html(&self, path: &str) -> Html {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        Html::parse_document(&response.text().await.expect("body"))
    }

    /// The CSRF token the server put in the page's meta tag for this client.
    pub async fn csrf_token(&self) -> String {
        let html = self.get_html("/login").await;
        attr(&html, "meta[name=csrf-token]", "content")
    }

    /// Posts a form with this client's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        self.client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// The same form post as htmx sends it: token in a header, `HX-Request: true`.
    pub async fn post_htmx(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token().await;
        self.client
            .post(self.url(path))
            .header("HX-Request", "true")
            .header("X-CSRF-Token", token)
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn sign_up(&self, email: &str) {
        let response = self
            .post_form(
                "/signup",
                &[
                    ("email", email),
                    ("display_name", "Test Learner"),
                    ("password", "correct horse battery"),
                ],
            )
            .await;
        assert_eq!(response.status(), 303, "sign-up should redirect");
    }

    /// Signs up and then gives the account a staff role, as an admin would from the CLI.
    pub async fn sign_up_as(&self, email: &str, role: labdeck::accounts::Role) {
        self.sign_up(email).await;
        let mut conn = self.db().acquire().await.expect("conn");
        let changed = labdeck::accounts::set_role(&mut conn, email, role)
            .await
            .expect("set role");
        assert!(changed);
    }

    pub async fn log_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("email", email), ("password", password)])
            .await
    }

    /// A second, independent browser (own cookies) against the same server.
    pub fn other_client(&self) -> TestApp {
        TestApp {
            client: new_client(),
            ..self.clone()
        }
    }

    pub fn state(&self) -> &AppState {
        &self.guard.server.state
    }

    pub fn db(&self) -> sqlx::PgPool {
        self.state().db.clone()
    }
}

fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .expect("client")
}

/// Deletes every key under `prefix` (and nothing else: the Redis may be shared). Best effort: a
/// test that stopped its own Redis has nothing left to delete.
fn delete_redis_keys(url: &str, prefix: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(std::time::Duration::from_secs(1)) else {
        return;
    };
    let mut cursor = 0u64;
    loop {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query::<(u64, Vec<String>)>(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL").arg(&keys).query::<()>(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

impl Drop for ServerGuard {
    fn drop(&mut self) {
        self.server.handle.abort();
        delete_redis_keys(&self.redis_url, &self.redis_prefix);
        if let Some(parent) = self.upload_dir.parent() {
            let _ = std::fs::remove_dir_all(parent);
        }
        let name = self.database_name.clone();
        let admin = admin_database_url();
        // Drop runs outside async context; use a private runtime on its own thread.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                            .execute(&pool)
                            .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

pub fn select<'a>(html: &'a Html, selector: &str) -> Vec<scraper::ElementRef<'a>> {
    let parsed =
        Selector::parse(selector).unwrap_or_else(|e| panic!("bad selector {selector}: {e:?}"));
    html.select(&parsed).collect()
}

pub fn text(html: &Html, selector: &str) -> String {
    select(html, selector)
        .first()
        .map(|e| e.text().collect::<String>().trim().to_string())
        .unwrap_or_else(|| panic!("no element matches {selector}"))
}

pub fn attr(html: &Html, selector: &str, name: &str) -> String {
    select(html, selector)
        .first()
        .and_then(|e| e.value().attr(name))
        .unwrap_or_else(|| panic!("no {name} on {selector}"))
        .to_string()
}

/// A throw-away content tree for tests that need specific lessons.
pub struct ContentFixture {
    pub dir: PathBuf,
}

impl ContentFixture {
    pub fn new() -> ContentFixture {
        let dir = std::env::temp_dir().join(format!("labdeck-fixture-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(dir.join("basics")).expect("fixture dir");
        std::fs::write(
            dir.join("tracks.toml"),
            "[[track]]\nid = \"basics\"\ntitle = \"Basics\"\nsummary = \"Fixture track\"\n",
        )
        .expect("tracks");
        ContentFixture { dir }
    }

    pub fn lesson(
        &self,
        file: &str,
        slug: &str,
        order: u32,
        extra_front: &str,
        body: &str,
    ) -> &Self {
        let text = format!(
            "+++\ntitle = \"Lesson {slug}\"\nslug = \"{slug}\"\nsummary = \"About {slug}\"\ntrack = \"basics\"\norder = {order}\nlevel = \"junior\"\nminutes = 4\n{extra_front}+++\n{body}"
        );
        self.write(file, &text);
        self
    }

    pub fn write(&self, file: &str, text: &str) {
        std::fs::write(self.dir.join("basics").join(file), text).expect("write fixture");
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for ContentFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis of our own, so a test can stop it without disturbing anything else.
pub struct OwnRedis {
    pub child: std::process::Child,
    pub port: u16,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("port")
            .local_addr()
            .expect("addr")
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        OwnRedis { child, port }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        self.child.kill().expect("stop redis");
        self.child.wait().expect("reaped");
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and `.form-error` text of a form page answered with an error.
pub async fn form_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let html = Html::parse_document(&response.text().await.expect("body"));
    (status, text(&html, ".form-error"))
}

/// Reads a submission's SSE stream to the end: (result fragments, summary fragment).
pub async fn follow_submission(app: &TestApp, lab: &str, id: i64) -> (Vec<String>, String) {
    let mut response = app
        .client
        .get(app.url(&format!("/labs/{lab}/submissions/{id}/events")))
        .send()
        .await
        .expect("events");
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut raw = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(90), async {
        while let Ok(Some(chunk)) = response.chunk().await {
            raw.push_str(&String::from_utf8_lossy(&chunk));
        }
    })
    .await
    .expect("the stream ends when grading is done");
    let mut results = Vec::new();
    let mut summary = String::new();
    for block in raw.split("\n\n") {
        let event = block
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or("");
        let data: Vec<&str> = block
            .lines()
            .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
            .collect();
        match event {
            "result" => results.push(data.join("\n")),
            "done" => summary = data.join("\n"),
            _ => {}
        }
    }
    (results, summary)
}
