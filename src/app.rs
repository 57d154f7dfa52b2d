//! Application state and server start-up.
//!
//! `start` connects to Postgres (creating the database and migrating) and Redis, loads the
//! content tree, indexes it for search, builds the router and starts serving; it returns the
//! address actually bound so tests can bind port 0. Shutdown is graceful on Ctrl-C / SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::accounts::throttle::LoginThrottle;
use crate::config::Config;
use crate::content::{ContentStore, search};
use crate::grading::Lab;
use crate::infra;
use crate::labs::learner::LabKeys;
use crate::labs::notifications::service::NotificationsLab;
use crate::labs::rate_limiter::service::RateLimiterLab;
use crate::labs::upload::service::UploadLab;
use crate::sandbox::Sandbox;
use crate::sandbox::pool::SandboxPool;
use crate::web;
use crate::web::assets::SiteInfo;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: PgPool,
    pub redis: ConnectionManager,
    pub content: Arc<ContentStore>,
    pub throttle: LoginThrottle,
    pub rate_limiter: Arc<RateLimiterLab>,
    pub notifications: Arc<NotificationsLab>,
    /// Lets curl act as a learner in any lab (see `labs::learner`).
    pub lab_keys: Arc<LabKeys>,
    /// The streaming-upload lab: storage, limits, concurrency cap, live progress.
    pub uploads: Arc<UploadLab>,
    pub site: Arc<SiteInfo>,
    pub metrics: PrometheusHandle,
    /// Labs with a graded challenge.
    pub labs: Arc<Vec<Arc<Lab>>>,
    /// `None` when the JavaScript engine is missing: pages work, grading says why it cannot.
    pub graders: Option<Arc<SandboxPool>>,
}

impl AppState {
    pub fn lab(&self, id: &str) -> Option<Arc<Lab>> {
        self.labs.iter().find(|lab| lab.id == id).cloned()
    }
}

pub struct RunningServer {
    pub addr: SocketAddr,
    pub state: AppState,
    pub handle: JoinHandle<std::io::Result<()>>,
    // Kept alive for as long as the server runs in dev mode.
    _watcher: Option<notify::RecommendedWatcher>,
}

/// The process-wide Prometheus recorder (the `metrics` facade allows one per process).
fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Result<PrometheusHandle, String>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .map_err(|e| format!("installing metrics recorder: {e}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

pub async fn build_state(config: Config) -> anyhow::Result<AppState> {
    let db = infra::connect_postgres(&config.database_url).await?;
    let redis = infra::connect_redis(&config.redis_url).await?;
    let content_dir = config.content_dir.clone();
    let content = tokio::task::spawn_blocking(move || ContentStore::load(&content_dir)).await?;
    search::sync_index(&db, &content.library()).await?;
    let static_dir = config.static_dir.clone();
    let dev = config.dev;
    let site = tokio::task::spawn_blocking(move || SiteInfo::load(&static_dir, dev)).await?;
    {
        let mut conn = db.acquire().await?;
        let stale = crate::progress::submissions::abandon_stale(&mut conn).await?;
        if stale > 0 {
            tracing::warn!(
                stale,
                "marked submissions left pending by a stopped process as failed"
            );
        }
    }
    let labs_dir = config.labs_dir.clone();
    let labs =
        tokio::task::spawn_blocking(move || crate::labs::load_challenges(&labs_dir)).await??;
    let (threads, queue) = (config.grader_threads, config.grader_queue);
    let graders = tokio::task::spawn_blocking(move || -> anyhow::Result<SandboxPool> {
        let sandbox = Sandbox::from_project(std::path::Path::new("."))?;
        Ok(SandboxPool::new(Arc::new(sandbox), threads, queue)?)
    })
    .await?;
    let graders = match graders {
        Ok(pool) => Some(Arc::new(pool)),
        Err(err) => {
            tracing::error!(error = %err, "grading is unavailable");
            None
        }
    };
    let notifications = NotificationsLab::start(db.clone(), &config.kafka).await;
    Ok(AppState {
        notifications,
        labs: Arc::new(labs),
        graders,
        throttle: LoginThrottle::new(redis.clone(), &config.redis_prefix),
        rate_limiter: Arc::new(RateLimiterLab::new(redis.clone(), &config.redis_prefix)),
        lab_keys: Arc::new(LabKeys::new(config.secret.expose())),
        uploads: Arc::new(UploadLab::new(
            config.upload.clone(),
            config.secret.expose(),
        )),
        config: Arc::new(config),
        db,
        redis,
        content,
        site: Arc::new(site),
        metrics: metrics_handle()?,
    })
}

pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let state = build_state(config).await?;
    let watcher = if state.config.dev {
        Some(state.content.watch()?)
    } else {
        None
    };
    spawn_background_tasks(&state);
    let listener = TcpListener::bind(state.config.bind).await?;
    let addr = listener.local_addr()?;
    let router = web::router(state.clone());
    let handle = tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
    });
    Ok(RunningServer {
        addr,
        state,
        handle,
        _watcher: watcher,
    })
}

fn spawn_background_tasks(state: &AppState) {
    // Keep the search index in step with content reloads.
    let (db, content) = (state.db.clone(), state.content.clone());
    let mut changes = content.subscribe();
    tokio::spawn(async move {
        while changes.recv().await.is_ok() {
            if let Err(err) = search::sync_index(&db, &content.library()).await {
                tracing::warn!(error = %err, "re-indexing lessons failed");
            }
        }
    });
    // Expired sessions are refused on lookup; this just keeps the table small.
    let db = state.db.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            if let Ok(mut conn) = db.acquire().await
                && let Err(err) = crate::accounts::session::delete_expired(&mut conn).await
            {
                tracing::warn!(error = %err, "deleting expired sessions failed");
            }
        }
    });
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
