//! Typed configuration. Every setting has a default suitable for a laptop, can be overridden by
//! an environment variable and, for `serve`, by a command-line flag (see `labdeck serve --help`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// A secret that never shows up in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL; the database is created if it does not exist.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/labdeck"
    )]
    pub database_url: String,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Redis connection URL.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix for every Redis key labdeck writes, so several deployments can share one Redis.
    #[arg(long, env = "LABDECK_REDIS_PREFIX", default_value = "labdeck:")]
    pub redis_prefix: String,
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "LABDECK_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// The URL users reach labdeck at. An https URL turns on Secure cookies and HSTS.
    #[arg(long, env = "LABDECK_PUBLIC_URL")]
    pub public_url: Option<String>,
    #[arg(long, env = "LABDECK_CONTENT_DIR", default_value = "content")]
    pub content_dir: PathBuf,
    #[arg(long, env = "LABDECK_STATIC_DIR", default_value = "static")]
    pub static_dir: PathBuf,
    #[arg(long, env = "LABDECK_LABS_DIR", default_value = "labs")]
    pub labs_dir: PathBuf,
    /// Threads that run submissions (each grades one submission at a time).
    #[arg(long, env = "LABDECK_GRADER_THREADS", default_value_t = 2)]
    pub grader_threads: usize,
    /// Submissions that may wait for a grader thread before new ones are refused as busy.
    #[arg(long, env = "LABDECK_GRADER_QUEUE", default_value_t = 16)]
    pub grader_queue: usize,
    /// Dev mode: reload lessons when files under the content directory change, and refresh
    /// open browser tabs.
    #[arg(long, env = "LABDECK_DEV", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub dev: bool,
    /// Key for CSRF tokens (at least 32 characters). A random key is used when unset, which
    /// invalidates open forms on restart and cannot be shared by several instances.
    #[arg(long, env = "LABDECK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub upload: Box<UploadArgs>,
}

/// Kafka for the notifications lab. Without `KAFKA_BROKERS` an in-process mock cluster
/// (librdkafka's) is started with the server, so nothing has to be installed.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Bootstrap servers, `host:port[,host:port…]`. Unset: an embedded mock cluster.
    #[arg(long = "kafka-brokers", env = "KAFKA_BROKERS")]
    pub brokers: Option<String>,
    /// Run without Kafka: the notifications lab says it is switched off.
    #[arg(long = "no-kafka", env = "LABDECK_NO_KAFKA", action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub disabled: bool,
    /// `plaintext`, `ssl`, `sasl_plaintext` or `sasl_ssl` (librdkafka's `security.protocol`).
    #[arg(long = "kafka-security-protocol", env = "KAFKA_SECURITY_PROTOCOL")]
    pub security_protocol: Option<String>,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
    #[arg(long = "kafka-sasl-mechanism", env = "KAFKA_SASL_MECHANISM")]
    pub sasl_mechanism: Option<String>,
    #[arg(long = "kafka-sasl-username", env = "KAFKA_SASL_USERNAME")]
    pub sasl_username: Option<String>,
    #[arg(
        long = "kafka-sasl-password",
        env = "KAFKA_SASL_PASSWORD",
        hide_env_values = true
    )]
    pub sasl_password: Option<String>,
    /// CA certificate (PEM) to verify the brokers with.
    #[arg(long = "kafka-ssl-ca-location", env = "KAFKA_SSL_CA_LOCATION")]
    pub ssl_ca_location: Option<PathBuf>,
    /// Prefix of every topic and consumer-group name, so deployments (or test runs) can share
    /// one cluster.
    #[arg(
        long = "kafka-prefix",
        env = "LABDECK_KAFKA_PREFIX",
        default_value = ""
    )]
    pub prefix: String,
    /// The notifications pipeline's first retry delay in milliseconds.
    #[arg(
        long = "notify-retry-base-ms",
        env = "LABDECK_NOTIFY_RETRY_BASE_MS",
        default_value_t = 1000
    )]
    pub retry_base_ms: u64,
    /// Each further retry waits this many times longer.
    #[arg(
        long = "notify-retry-multiplier",
        env = "LABDECK_NOTIFY_RETRY_MULTIPLIER",
        default_value_t = 5
    )]
    pub retry_multiplier: u32,
    /// Attempts (the first delivery included) before an event goes to the dead-letter topic.
    #[arg(
        long = "notify-max-attempts",
        env = "LABDECK_NOTIFY_MAX_ATTEMPTS",
        default_value_t = 4
    )]
    pub max_attempts: u32,
}

impl Default for KafkaArgs {
    fn default() -> Self {
        KafkaArgs {
            brokers: None,
            disabled: false,
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            prefix: String::new(),
            retry_base_ms: 1000,
            retry_multiplier: 5,
            max_attempts: 4,
        }
    }
}

/// The streaming-upload lab's storage and limits (every limit has its own error code, see
/// `labs::upload::limits`).
#[derive(Debug, Clone, Args)]
pub struct UploadArgs {
    /// Where uploaded files are stored, one folder per learner.
    #[arg(
        long = "upload-dir",
        env = "LABDECK_UPLOAD_DIR",
        default_value = ".data/uploads"
    )]
    pub dir: PathBuf,
    /// Largest single file (multipart file, raw body, presigned or tus upload), in bytes.
    #[arg(long = "upload-max-file-bytes", env = "LABDECK_UPLOAD_MAX_FILE_BYTES", default_value_t = 200 * 1024 * 1024)]
    pub max_file_bytes: u64,
    /// Largest request body of one upload request, in bytes.
    #[arg(long = "upload-max-request-bytes", env = "LABDECK_UPLOAD_MAX_REQUEST_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_request_bytes: u64,
    /// Most files in one multipart request.
    #[arg(
        long = "upload-max-files",
        env = "LABDECK_UPLOAD_MAX_FILES",
        default_value_t = 5
    )]
    pub max_files: u32,
    /// Most non-file fields in one multipart request.
    #[arg(
        long = "upload-max-fields",
        env = "LABDECK_UPLOAD_MAX_FIELDS",
        default_value_t = 10
    )]
    pub max_fields: u32,
    /// Largest non-file field value, in bytes.
    #[arg(long = "upload-max-field-bytes", env = "LABDECK_UPLOAD_MAX_FIELD_BYTES", default_value_t = 16 * 1024)]
    pub max_field_bytes: u64,
    /// Most parts (files and fields together) in one multipart request.
    #[arg(
        long = "upload-max-parts",
        env = "LABDECK_UPLOAD_MAX_PARTS",
        default_value_t = 20
    )]
    pub max_parts: u32,
    /// Uploads one learner may have in flight at once; beyond it: 503 + Retry-After.
    #[arg(
        long = "upload-per-learner",
        env = "LABDECK_UPLOAD_PER_LEARNER",
        default_value_t = 3
    )]
    pub per_learner: u32,
    /// Uploads the whole server accepts at once; beyond it: 503 + Retry-After.
    #[arg(
        long = "upload-global",
        env = "LABDECK_UPLOAD_GLOBAL",
        default_value_t = 64
    )]
    pub global: u32,
    /// Cap of the deliberately buffering endpoint (it holds the whole body in memory).
    #[arg(long = "upload-buffered-max-bytes", env = "LABDECK_UPLOAD_BUFFERED_MAX_BYTES", default_value_t = 8 * 1024 * 1024)]
    pub buffered_max_bytes: u64,
    /// How long presigned upload and download URLs stay valid, in seconds.
    #[arg(
        long = "upload-url-ttl",
        env = "LABDECK_UPLOAD_URL_TTL",
        default_value_t = 600
    )]
    pub url_ttl_secs: u64,
    /// How long an unfinished tus upload is kept, in seconds.
    #[arg(long = "upload-tus-expiry", env = "LABDECK_UPLOAD_TUS_EXPIRY", default_value_t = 24 * 3600)]
    pub tus_expiry_secs: u64,
}

impl Default for UploadArgs {
    fn default() -> Self {
        UploadArgs {
            dir: PathBuf::from(".data/uploads"),
            max_file_bytes: 200 * 1024 * 1024,
            max_request_bytes: 256 * 1024 * 1024,
            max_files: 5,
            max_fields: 10,
            max_field_bytes: 16 * 1024,
            max_parts: 20,
            per_learner: 3,
            global: 64,
            buffered_max_bytes: 8 * 1024 * 1024,
            url_ttl_secs: 600,
            tus_expiry_secs: 24 * 3600,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
    pub bind: SocketAddr,
    pub public_url: String,
    pub content_dir: PathBuf,
    pub static_dir: PathBuf,
    pub labs_dir: PathBuf,
    pub grader_threads: usize,
    pub grader_queue: usize,
    pub dev: bool,
    pub secret: Secret,
    pub kafka: KafkaArgs,
    pub upload: UploadArgs,
}

impl Config {
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Config> {
        let secret = match args.secret {
            Some(s) if s.len() >= 32 => Secret(s.into_bytes()),
            Some(_) => anyhow::bail!("LABDECK_SECRET must be at least 32 characters long"),
            None => {
                let mut bytes = vec![0u8; 32];
                rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
                Secret(bytes)
            }
        };
        let public_url = args
            .public_url
            .unwrap_or_else(|| format!("http://{}", args.bind))
            .trim_end_matches('/')
            .to_string();
        Ok(Config {
            database_url: args.db.database_url,
            redis_url: args.redis_url,
            redis_prefix: args.redis_prefix,
            bind: args.bind,
            public_url,
            content_dir: args.content_dir,
            static_dir: args.static_dir,
            labs_dir: args.labs_dir,
            grader_threads: args.grader_threads,
            grader_queue: args.grader_queue,
            dev: args.dev,
            secret,
            kafka: args.kafka,
            upload: *args.upload,
        })
    }

    /// Cookies get `Secure` (and the `__Host-` prefix) only when served over TLS; browsers drop
    /// Secure cookies set by plain-http origins other than localhost.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }
}
