//! End-to-end latency of the notifications pipeline — `POST /labs/notifications/api/orders` to
//! the notification arriving on the learner's WebSocket — and sustained events per second.
//!
//! Every order goes the whole way: order + outbox row in PostgreSQL, the relay, Kafka, the
//! consumer group, both handlers (notification row, email row), `pg_notify`, the WebSocket.
//!
//! Run with `cargo bench --bench notifications` (or `bench/notifications.sh`, which runs it with
//! the embedded broker and with tansu). Kafka is `LABDECK_BENCH_KAFKA_BROKERS` when set, else the
//! embedded mock cluster. PostgreSQL is `LABDECK_TEST_DATABASE_URL`'s server (a database of its
//! own, dropped at the end); Redis is `REDIS_URL`.

use std::time::{Duration, Instant};

use futures::StreamExt;
use labdeck::app;
use labdeck::config::{Config, DatabaseArgs, KafkaArgs, ServeArgs};
use labdeck::labs::learner::LabKeys;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "bench-secret-that-is-long-enough-0123456789";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let admin = std::env::var("LABDECK_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("labdeck_bench_{}", std::process::id());
    let root = admin
        .rsplit_once('/')
        .map(|(r, _)| r.to_string())
        .unwrap_or(admin.clone());
    let brokers = std::env::var("LABDECK_BENCH_KAFKA_BROKERS").ok();
    let mode = if brokers.is_some() {
        "external broker"
    } else {
        "embedded mock cluster"
    };
    let config = Config::from_args(ServeArgs {
        db: DatabaseArgs {
            database_url: format!("{root}/{name}"),
        },
        redis_url: std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
        redis_prefix: format!("labdeck-bench:{name}:"),
        bind: "127.0.0.1:0".parse()?,
        public_url: None,
        content_dir: "content".into(),
        static_dir: "static".into(),
        labs_dir: "labs".into(),
        grader_threads: 1,
        grader_queue: 1,
        dev: false,
        secret: Some(SECRET.into()),
        kafka: KafkaArgs {
            brokers,
            prefix: format!("{name}."),
            ..KafkaArgs::default()
        },
        upload: Box::default(),
    })?;
    let server = app::start(config).await?;
    let base = format!("http://{}", server.addr);
    let key = LabKeys::new(SECRET.as_bytes()).issue("u1");
    let client = reqwest::Client::new();

    let mut request =
        format!("ws://{}/labs/notifications/ws?after=0", server.addr).into_client_request()?;
    request.headers_mut().insert("X-Lab-Key", key.parse()?);
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await?;

    let order = move |item: String| {
        let client = client.clone();
        let key = key.clone();
        let url = format!("{base}/labs/notifications/api/orders");
        async move {
            let response = client
                .post(url)
                .header("X-Lab-Key", key)
                .json(&json!({ "item": item, "quantity": 1 }))
                .send()
                .await?;
            anyhow::ensure!(
                response.status() == 201,
                "order refused: {}",
                response.status()
            );
            anyhow::Ok(())
        }
    };
    async fn receive(
        socket: &mut tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    ) -> anyhow::Result<i64> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
                .await?
                .ok_or_else(|| anyhow::anyhow!("socket closed"))??;
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text)?;
                if value["type"] == "notification" {
                    return Ok(value["notification"]["seq"].as_i64().unwrap_or(0));
                }
            }
        }
    }

    // Warm-up: the first events wait for the consumer group to form.
    for i in 0..20 {
        order(format!("warm-up {i}")).await?;
        receive(&mut socket).await?;
    }

    // Latency, one order at a time.
    let samples = 200;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = Instant::now();
        order(format!("latency {i}")).await?;
        receive(&mut socket).await?;
        latencies.push(started.elapsed());
    }
    latencies.sort();

    // Throughput: many orders in flight, until every notification has arrived.
    let total = 2_000usize;
    let started = Instant::now();
    let producer = tokio::spawn({
        let order = order.clone();
        async move {
            futures::stream::iter(0..total)
                .map(|i| order(format!("load {i}")))
                .buffer_unordered(16)
                .collect::<Vec<_>>()
                .await
        }
    });
    let mut received = 0;
    while received < total {
        receive(&mut socket).await?;
        received += 1;
    }
    let elapsed = started.elapsed();
    for result in producer.await? {
        result?;
    }

    println!(
        "notifications ({mode}): order -> WebSocket p50 {:.1} ms, p99 {:.1} ms ({} samples); sustained {:.0} events/s ({total} orders, 16 in flight)",
        percentile(&latencies, 0.5).as_secs_f64() * 1000.0,
        percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
        samples,
        total as f64 / elapsed.as_secs_f64(),
    );
    server.handle.abort();
    if let Ok(pool) = sqlx::PgPool::connect(&admin).await {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&pool)
            .await;
    }
    Ok(())
}
