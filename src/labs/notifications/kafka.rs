//! Kafka connections for the notifications lab.
//!
//! With `KAFKA_BROKERS` set, labdeck talks to that cluster (with the optional SASL / TLS
//! settings) and creates the topics it needs through the admin API. Without it, an embedded
//! broker is started in-process: librdkafka's mock cluster, which speaks the Kafka protocol on a
//! loopback port, so `make run` needs nothing installed. The mock keeps everything in memory and
//! is for development only; tests and CI use a real broker.
//!
//! Every client comes from [`Kafka::config`], so producers and consumers share the same
//! connection and security settings.

use std::time::Duration;

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::FutureProducer;

use crate::config::KafkaArgs;

/// Partitions per topic: events are keyed by learner, so one learner's events stay in order
/// while several consumers share the work.
pub const PARTITIONS: i32 = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerMode {
    /// librdkafka's in-process mock cluster.
    Embedded,
    /// A real cluster from `KAFKA_BROKERS`.
    External,
}

pub struct Kafka {
    pub mode: BrokerMode,
    pub brokers: String,
    base: ClientConfig,
}

impl Kafka {
    /// Clients for the configured cluster, or for the embedded one, started here with `topics`
    /// created. Nothing is sent to an external cluster yet (see [`Kafka::create_topics`]).
    pub async fn new(args: &KafkaArgs, topics: &[String]) -> anyhow::Result<Kafka> {
        let (mode, brokers) = match &args.brokers {
            Some(brokers) => (BrokerMode::External, brokers.clone()),
            None => (BrokerMode::Embedded, start_embedded(topics.to_vec()).await?),
        };
        let mut base = ClientConfig::new();
        base.set("bootstrap.servers", &brokers)
            .set("client.id", "labdeck")
            .set("socket.keepalive.enable", "true")
            .set("reconnect.backoff.ms", "100")
            .set("reconnect.backoff.max.ms", "2000");
        if let Some(protocol) = &args.security_protocol {
            base.set("security.protocol", protocol);
        }
        if let Some(mechanism) = &args.sasl_mechanism {
            base.set("sasl.mechanism", mechanism);
        }
        if let Some(user) = &args.sasl_username {
            base.set("sasl.username", user);
        }
        if let Some(password) = &args.sasl_password {
            base.set("sasl.password", password);
        }
        if let Some(ca) = &args.ssl_ca_location {
            base.set("ssl.ca.location", ca.to_string_lossy());
        }
        Ok(Kafka {
            mode,
            brokers,
            base,
        })
    }

    pub fn config(&self) -> ClientConfig {
        self.base.clone()
    }

    /// The idempotent producer: retries inside librdkafka never duplicate or reorder a
    /// partition's messages, and `acks=all` waits for the in-sync replicas.
    pub fn producer(&self) -> anyhow::Result<FutureProducer> {
        self.config()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            // How long librdkafka keeps trying one message; the outbox relay retries after that.
            .set("message.timeout.ms", "10000")
            .create()
            .context("creating the Kafka producer")
    }

    /// A consumer in `group` that commits only offsets the code stored after finishing a message
    /// (at-least-once), starting from the earliest offset the first time the group is seen.
    pub fn consumer(&self, group: &str) -> anyhow::Result<StreamConsumer> {
        self.config()
            .set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "500")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            // How long a fetch may wait for data. Kafka answers a waiting fetch as soon as data
            // arrives, but librdkafka's mock cluster and tansu hold it for the full wait, which
            // at the default 500 ms made every notification half a second late.
            .set("fetch.wait.max.ms", "20")
            .create()
            .with_context(|| format!("creating the Kafka consumer for group {group}"))
    }

    /// Creates the topics on an external cluster; existing ones are left as they are.
    pub async fn create_topics(&self, topics: &[String]) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .config()
            .create()
            .context("creating the Kafka admin client")?;
        let new_topics: Vec<NewTopic> = topics
            .iter()
            .map(|name| NewTopic::new(name, PARTITIONS, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = admin
            .create_topics(&new_topics, &options)
            .await
            .with_context(|| format!("creating Kafka topics on {}", self.brokers))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((topic, code)) => anyhow::bail!("creating Kafka topic {topic}: {code}"),
            }
        }
        Ok(())
    }
}

/// Starts the mock cluster on a thread of its own (it is not `Send`), creates the topics and
/// keeps it alive for the life of the process. Returns its bootstrap servers.
async fn start_embedded(topics: Vec<String>) -> anyhow::Result<String> {
    let (ready, started) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("kafka-mock".into())
        .spawn(move || {
            let cluster = match MockCluster::new(1) {
                Ok(cluster) => cluster,
                Err(err) => {
                    let _ = ready.send(Err(anyhow::anyhow!("starting the mock cluster: {err}")));
                    return;
                }
            };
            for topic in &topics {
                if let Err(err) = cluster.create_topic(topic, PARTITIONS, 1) {
                    let _ = ready.send(Err(anyhow::anyhow!("creating mock topic {topic}: {err}")));
                    return;
                }
            }
            let _ = ready.send(Ok(cluster.bootstrap_servers()));
            // The cluster lives as long as this thread, which is as long as the process.
            loop {
                std::thread::park();
            }
        })
        .context("spawning the mock cluster thread")?;
    started.await.context("the mock cluster thread stopped")?
}
