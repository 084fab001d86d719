//! From a resolved configuration to a running Gatehouse: the store, its migrations, the
//! demo seed, the HTTP server with the JSON API, and the delivery workers, started in
//! that order (the workers before the first request, so a code issued by it goes straight
//! to one). `gatehouse serve` resolves its flags into a [`Plan`]; the tests build theirs
//! by hand, with their own clock, keys and outbox.

use actix_web::{App, HttpServer};
use gatehouse_api::{ApiState, MetricsText};
use gatehouse_app::accounts::SeededAccount;
use gatehouse_domain::clock::Clock;
use gatehouse_store::{Store, StoreConfig};
use gatehouse_workers::{RedisQueue, WorkerConfig, Workers};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a process could not start (or a command of the binary failed).
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Store(#[from] gatehouse_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
}

/// Where this process's jobs queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// In this process (the embedded default): only its own workers take the jobs.
    InProcess,
    /// In Redis (the store's `redis` settings), shared with every worker process;
    /// `fair_burst` is a practice's share of the priority lane.
    Redis { fair_burst: u32 },
}

/// A serving process, resolved from its configuration.
pub struct Plan {
    pub store: StoreConfig,
    pub clock: Arc<dyn Clock>,
    /// Apply the migrations before anything else (`--no-migrate` turns it off).
    pub migrate: bool,
    /// Seed the demo practice and its accounts (`--demo`).
    pub demo: bool,
    pub listen: SocketAddr,
    /// GATEHOUSE_PUBLIC_URL: where people and EHRs reach this deployment (the pages'
    /// origin); `None`: `http://localhost:<the port bound>`.
    pub public_url: Option<url::Url>,
    /// HTTP worker threads; `None`: actix-web's default (one per core).
    pub http_workers: Option<usize>,
    /// Seconds the HTTP server waits for requests in flight when stopped.
    pub shutdown_timeout: u64,
    pub trusted_proxies: Vec<IpNet>,
    pub sns: gatehouse_api::sns::Verifier,
    pub metrics: Option<Arc<dyn MetricsText>>,
    /// This process's delivery workers; `None`: none run here (`--no-workers`).
    pub workers: Option<WorkerConfig>,
    pub queue: Queue,
}

/// A started process. The HTTP server serves once `server` is awaited or spawned.
pub struct Running {
    pub store: Store,
    pub app: gatehouse_app::App,
    pub server: actix_web::dev::Server,
    /// Where the server listens (the port chosen, when `listen` asked for port 0).
    pub addr: SocketAddr,
    /// The origin of the pages (GATEHOUSE_PUBLIC_URL, or its default).
    pub public_url: url::Url,
    pub workers: Option<Workers>,
    /// The demo accounts, when `demo` was asked for.
    pub seeded: Vec<SeededAccount>,
    /// The demo's OpenID Connect clients (the confidential one's secret shown once).
    pub demo_clients: Vec<gatehouse_app::oidc::IssuedClient>,
}

/// Starts the process `plan` describes.
pub async fn build(plan: Plan) -> Result<Running, BuildError> {
    let redis = plan.store.redis.clone();
    let store = Store::connect(plan.store, plan.clock).await?;
    if plan.migrate {
        store.migrate().await?;
    }
    let app = gatehouse_app::App::new(store.clone());
    let seeded = if plan.demo {
        app.accounts().seed_demo().await?
    } else {
        Vec::new()
    };
    // Bound before the server is made, so that the default public URL names the port.
    let listener = std::net::TcpListener::bind(plan.listen)?;
    let addr = listener.local_addr()?;
    let public_url = match plan.public_url {
        Some(u) => u,
        None => default_public_url(addr.port())?,
    };
    let trusted_proxies = Arc::new(plan.trusted_proxies);
    let issuer = public_url.origin().ascii_serialization();
    app.oidc(&issuer).ensure_key().await?;
    spawn_oidc_sweep(&app);
    let demo_clients = if plan.demo {
        demo_clients(&app, &issuer).await?
    } else {
        Vec::new()
    };
    let state = ApiState {
        app: app.clone(),
        issuer,
        trusted_proxies: trusted_proxies.clone(),
        sns: plan.sns,
        metrics: plan.metrics,
    };
    let pages = gatehouse_web::configure(gatehouse_web::WebState {
        app: app.clone(),
        public_url: public_url.clone(),
        trusted_proxies,
        keyring: store.config().keyring.clone(),
        issuer: state.issuer.clone(),
    });
    let configure = gatehouse_api::configure(state);
    let mut server = HttpServer::new(move || {
        App::new()
            // A span per request (route template, status, tenant), its duration, and the
            // access log line.
            .wrap(gatehouse_api::RequestTelemetry)
            // The pages first: the API's default service answers every other path.
            .configure(pages.clone())
            .configure(configure.clone())
    })
    .shutdown_timeout(plan.shutdown_timeout);
    if let Some(n) = plan.http_workers {
        server = server.workers(n);
    }
    let server = server.listen(listener)?;
    let queue = match plan.queue {
        Queue::InProcess => None,
        Queue::Redis { fair_burst } => redis_queue(&store, redis, fair_burst),
    };
    let workers = start_workers(&store, plan.workers, queue)?;
    Ok(Running {
        store,
        app,
        server: server.run(),
        addr,
        public_url,
        workers,
        seeded,
        demo_clients,
    })
}

/// How often `serve` deletes the OpenID Connect rows nobody can use any more.
const OIDC_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes expired authorization requests, codes and tokens every [`OIDC_SWEEP_EVERY`].
fn spawn_oidc_sweep(app: &gatehouse_app::App) {
    let app = app.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(OIDC_SWEEP_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            match app.oidc("").sweep().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    rows = n,
                    "expired OpenID Connect requests, codes and tokens deleted"
                ),
                Err(e) => tracing::warn!(error = %e, "the OpenID Connect sweep failed"),
            }
        }
    });
}

/// The redirect URI of the demo's clients: a local EHR on port 8400.
pub const DEMO_REDIRECT_URI: &str = "http://localhost:8400/callback";
/// Where the demo's clients return after signing out.
pub const DEMO_POST_LOGOUT_URI: &str = "http://localhost:8400/signed-out";

/// The demo's EHR, registered twice: a confidential client (a server with a secret) and a
/// public one (PKCE alone).
async fn demo_clients(
    app: &gatehouse_app::App,
    issuer: &str,
) -> Result<Vec<gatehouse_app::oidc::IssuedClient>, BuildError> {
    use gatehouse_app::oidc::ClientInput;
    use gatehouse_domain::oidc::ClientKind;
    let mut out = Vec::new();
    for (id, name, kind) in [
        ("demo-ehr", "Demo EHR", ClientKind::Confidential),
        (
            "demo-ehr-public",
            "Demo EHR (public client)",
            ClientKind::Public,
        ),
    ] {
        out.push(
            app.oidc(issuer)
                .seed_demo_client(ClientInput {
                    name: name.to_owned(),
                    redirect_uris: vec![DEMO_REDIRECT_URI.to_owned()],
                    post_logout_redirect_uris: vec![DEMO_POST_LOGOUT_URI.to_owned()],
                    kind,
                    companies: None,
                    client_id: Some(id.to_owned()),
                })
                .await?,
        );
    }
    Ok(out)
}

/// `http://localhost:<port>`: Chromium treats localhost as a secure context (`__Host-`
/// cookies work), which it does not for 127.0.0.1.
pub fn default_public_url(port: u16) -> Result<url::Url, BuildError> {
    url::Url::parse(&format!("http://localhost:{port}"))
        .map_err(|e| BuildError::Config(format!("GATEHOUSE_PUBLIC_URL: {e}")))
}

/// Starts a process's delivery workers (none when `config` is `None`): on Redis when
/// `queue` is given, else in-process. Without workers, the Redis queue is still attached,
/// so that what this process issues reaches the worker processes.
pub fn start_workers(
    store: &Store,
    config: Option<WorkerConfig>,
    queue: Option<RedisQueue>,
) -> Result<Option<Workers>, BuildError> {
    let started = match (config, queue) {
        (None, Some(queue)) => {
            store.attach_queue(Arc::new(queue));
            tracing::info!(
                "--no-workers: codes are queued in Redis for `gatehouse worker` processes"
            );
            return Ok(None);
        }
        (None, None) => {
            tracing::warn!(
                "--no-workers: no delivery workers run in this process, and without GATEHOUSE_REDIS_URL no other process can take its jobs; codes stay queued until a worker runs"
            );
            return Ok(None);
        }
        (Some(config), Some(queue)) => {
            gatehouse_workers::spawn_on_redis(store.clone(), config, queue)
        }
        (Some(config), None) => gatehouse_workers::spawn_in_process(store.clone(), config),
    };
    started
        .map(Some)
        .map_err(|e| BuildError::Config(format!("delivery workers: {e}")))
}

/// The Redis queue, when the store was opened with Redis.
pub fn redis_queue(
    store: &Store,
    settings: Option<gatehouse_store::shared::RedisSettings>,
    fair_burst: u32,
) -> Option<RedisQueue> {
    let conn = store.redis()?.clone();
    settings.map(|s| RedisQueue::new(conn, s).with_fair_burst(fair_burst))
}
