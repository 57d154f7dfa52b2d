//! The notifications lab's running parts and how they start.
//!
//! [`NotificationsLab::start`] builds the Kafka clients and spawns, in the background:
//! 1. topic creation, retried until the cluster answers (orders are accepted meanwhile: they
//!    wait in the outbox);
//! 2. the outbox relay ([`super::relay`]);
//! 3. the consumers ([`super::pipeline`]): one group on the main topic, one per retry topic
//!    (each waits for its records' due time without holding up the main topic), one on the DLT;
//! 4. the wake-up hub ([`super::hub`]) that turns PostgreSQL notifications into WebSocket pushes.
//!
//! When Kafka is switched off (`--no-kafka`) or its clients cannot be built, the lab page says so
//! and the API answers 503; the rest of labdeck is unaffected.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::producer::FutureProducer;
use sqlx::PgPool;
use tokio::sync::{Notify, broadcast};

use super::kafka::{BrokerMode, Kafka};
use super::retry::{self, RetryPolicy};
use super::{hub, pipeline, relay};
use crate::config::KafkaArgs;

/// The topic names of one deployment (all carry `LABDECK_KAFKA_PREFIX`).
#[derive(Debug, Clone)]
pub struct Topics {
    pub main: String,
    /// `(delay, topic)` for every retry topic the policy can route to.
    pub retries: Vec<(u64, String)>,
    pub dead_letter: String,
}

impl Topics {
    pub fn new(prefix: &str, policy: &RetryPolicy) -> Topics {
        let main = format!("{prefix}order-events");
        let mut retries: Vec<(u64, String)> = Vec::new();
        for attempt in 2..=policy.max_attempts {
            let delay = policy.delay_before(attempt);
            let topic = retry::retry_topic(&main, delay);
            if !retries.iter().any(|(_, t)| *t == topic) {
                retries.push((delay, topic));
            }
        }
        Topics {
            dead_letter: retry::dead_letter_topic(&main),
            main,
            retries,
        }
    }

    pub fn all(&self) -> Vec<String> {
        let mut all = vec![self.main.clone()];
        all.extend(self.retries.iter().map(|(_, t)| t.clone()));
        all.push(self.dead_letter.clone());
        all
    }
}

/// What the page says about Kafka.
#[derive(Debug, Clone)]
pub enum KafkaStatus {
    Running { mode: BrokerMode, brokers: String },
    Disabled,
    Failed(String),
}

pub struct Pipeline {
    pub kafka: Kafka,
    pub producer: FutureProducer,
}

pub struct NotificationsLab {
    pub db: PgPool,
    pub status: KafkaStatus,
    pub pipeline: Option<Pipeline>,
    pub topics: Topics,
    pub policy: RetryPolicy,
    pub group_prefix: String,
    /// Wakes the relay as soon as an order is placed (it also polls, for other instances' rows).
    pub outbox_wake: Notify,
    /// Learner namespaces with new notifications (`*`: anyone — the listener reconnected).
    pub wakeups: broadcast::Sender<String>,
}

impl NotificationsLab {
    pub async fn start(db: PgPool, args: &KafkaArgs) -> Arc<NotificationsLab> {
        let policy = RetryPolicy {
            max_attempts: args.max_attempts.max(1),
            base_delay_ms: args.retry_base_ms,
            multiplier: args.retry_multiplier.max(1),
            max_delay_ms: RetryPolicy::default().max_delay_ms.max(args.retry_base_ms),
        };
        let topics = Topics::new(&args.prefix, &policy);
        let (wakeups, _) = broadcast::channel(1024);
        let (status, pipeline) = if args.disabled {
            (KafkaStatus::Disabled, None)
        } else {
            match Self::connect(args, &topics).await {
                Ok(pipeline) => (
                    KafkaStatus::Running {
                        mode: pipeline.kafka.mode.clone(),
                        brokers: pipeline.kafka.brokers.clone(),
                    },
                    Some(pipeline),
                ),
                Err(err) => {
                    tracing::error!(error = %format!("{err:#}"), "the notifications lab cannot use Kafka");
                    (KafkaStatus::Failed(format!("{err:#}")), None)
                }
            }
        };
        let lab = Arc::new(NotificationsLab {
            db,
            status,
            pipeline,
            topics,
            policy,
            group_prefix: args.prefix.clone(),
            outbox_wake: Notify::new(),
            wakeups,
        });
        tokio::spawn(hub::listen(lab.clone()));
        if lab.pipeline.is_some() {
            tokio::spawn(Self::run(lab.clone(), args.brokers.is_some()));
        }
        lab
    }

    async fn connect(args: &KafkaArgs, topics: &Topics) -> anyhow::Result<Pipeline> {
        let kafka = Kafka::new(args, &topics.all()).await?;
        let producer = kafka.producer()?;
        Ok(Pipeline { kafka, producer })
    }

    /// Creates the topics (retrying while the cluster is unreachable), then starts the relay and
    /// the consumers.
    async fn run(lab: Arc<NotificationsLab>, external: bool) {
        let Some(pipeline) = &lab.pipeline else {
            return;
        };
        if external {
            let mut wait = Duration::from_millis(250);
            while let Err(err) = pipeline.kafka.create_topics(&lab.topics.all()).await {
                tracing::warn!(error = %format!("{err:#}"), "creating Kafka topics; retrying");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(5));
            }
        }
        tokio::spawn(relay::run(lab.clone()));
        for source in pipeline::Source::all(&lab.topics) {
            tokio::spawn(pipeline::consume(lab.clone(), source));
        }
    }

    pub fn running(&self) -> bool {
        self.pipeline.is_some()
    }

    pub fn group(&self, name: &str) -> String {
        format!("{}{name}", self.group_prefix)
    }
}
