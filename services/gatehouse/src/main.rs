//! The `gatehouse` binary: serve, migrate, bootstrap.

use actix_web::{App, HttpServer};
use clap::Parser;
use gatehouse::config::{
    self, Cli, Command, CommonArgs, Delivery, DeliveryArgs, KeysAction, KeysArgs, LogFormat,
    ServeArgs, WorkerArgs, WorkerTuning,
};
use gatehouse::wiring::{self, BuildError, Plan, Queue};
use gatehouse_app::accounts::BootstrapOutcome;
use gatehouse_domain::clock::SystemClock;
use gatehouse_domain::session::SessionPolicy;
use gatehouse_store::{Store, StoreConfig};
use gatehouse_workers::aws::AwsDelivery;
use gatehouse_workers::{OutboxProvider, RequeueConfig, WorkerConfig, Workers};
use secrecy::SecretString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Why a command failed: the same reasons as a process failing to start.
type RunError = BuildError;

/// `GET /metrics` from the process's meter provider.
#[derive(Debug)]
struct Metrics(gatehouse_telemetry::PrometheusText);

impl gatehouse_api::MetricsText for Metrics {
    fn render(&self) -> Result<String, String> {
        self.0.render().map_err(|e| e.to_string())
    }
}

/// Logs, traces and metrics for this process (A2). `otlp`: whether the OTEL_* variables
/// are read (not for one-shot commands).
fn init_telemetry(
    format: Option<LogFormat>,
    service: &str,
    process: &str,
    otlp: bool,
) -> Result<gatehouse_telemetry::Telemetry, gatehouse_telemetry::TelemetryError> {
    let json = match format {
        Some(f) => f == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let format = if json {
        gatehouse_telemetry::LogFormat::Json
    } else {
        gatehouse_telemetry::LogFormat::Pretty
    };
    let mut settings = gatehouse_telemetry::Settings::from_env(service, process, format);
    settings.otlp_from_env = otlp;
    gatehouse_telemetry::init(settings)
}

/// The store's configuration: the common flags, then `tune`.
fn store_config(
    common: &CommonArgs,
    tune: impl FnOnce(&mut StoreConfig),
) -> Result<StoreConfig, RunError> {
    let keyring = common.keyring().map_err(RunError::Config)?;
    tracing::info!(key_id = keyring.current().id(), "secret key loaded");
    let mut cfg = StoreConfig::new(
        common.database_url.clone(),
        common.operator_company.clone(),
        Arc::new(keyring),
    );
    tune(&mut cfg);
    Ok(cfg)
}

async fn open_store(
    common: &CommonArgs,
    tune: impl FnOnce(&mut StoreConfig),
) -> Result<Store, RunError> {
    Ok(Store::connect(store_config(common, tune)?, Arc::new(SystemClock)).await?)
}

/// Where this process's workers send codes.
enum Sender {
    Outbox(OutboxProvider),
    Aws(AwsDelivery),
}

impl Sender {
    /// Where codes go, as the demo tells it.
    fn describe(&self) -> String {
        match self {
            Sender::Outbox(o) => {
                let path = o.path();
                let shown = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
                format!(
                    "Email and SMS codes are written to {} (one JSON line each).",
                    shown.display()
                )
            }
            Sender::Aws(_) => {
                "Email codes are sent through Amazon SES, SMS codes through Amazon SNS.".into()
            }
        }
    }

    /// The workers' configuration: the providers and, with AWS, SNS's SMS opt-out list
    /// (checked at first use, synced every `opt_out_sync`, told of START).
    fn into_worker_config(
        self,
        delivery: &DeliveryArgs,
        tuning: &WorkerTuning,
        subscribe_url_prefixes: Vec<String>,
    ) -> WorkerConfig {
        let mut config = match self {
            Sender::Outbox(o) => WorkerConfig::new(Arc::new(o)),
            Sender::Aws(a) => {
                let mut config = WorkerConfig::new(Arc::new(a.providers));
                config.sms_opt_outs = Some(a.sms_opt_outs);
                config.opt_out_sync.every = delivery.opt_out_sync();
                // The providers' account limits; the outbox has none.
                config.send_rates = gatehouse_workers::SendRateConfig {
                    email_per_second: tuning.send_rate_email,
                    sms_per_second: tuning.send_rate_sms,
                };
                config
            }
        };
        config.concurrency = tuning.worker_concurrency as usize;
        config.fair_burst = tuning.fair_burst;
        let idle = std::time::Duration::from_secs(u64::from(tuning.requeue_after_seconds));
        config.requeue = RequeueConfig {
            idle,
            every: (idle / 2).max(std::time::Duration::from_secs(1)),
            ..RequeueConfig::default()
        };
        config.subscribe_url_prefixes = subscribe_url_prefixes;
        config
    }
}

/// The provider of this process's workers (none with `--no-workers`), checked before
/// anything starts.
async fn delivery_provider(
    delivery: &DeliveryArgs,
    no_workers: bool,
) -> Result<Option<Sender>, RunError> {
    match delivery.kind {
        Delivery::Outbox => {
            if no_workers {
                return Ok(None);
            }
            let outbox = OutboxProvider::new(&delivery.outbox_path);
            outbox
                .check_writable()
                .map_err(|e| RunError::Config(format!("GATEHOUSE_OUTBOX_PATH: {e}")))?;
            tracing::info!(outbox = %outbox.path().display(), "codes are delivered to the outbox");
            Ok(Some(Sender::Outbox(outbox)))
        }
        Delivery::Aws => {
            // Checked even without workers: a process's configuration is wrong or right as a whole.
            let settings = delivery.aws_settings().map_err(RunError::Config)?;
            if no_workers {
                return Ok(None);
            }
            let providers = gatehouse_workers::aws::providers_from_env(settings)
                .await
                .map_err(|e| RunError::Config(format!("GATEHOUSE_DELIVERY=aws: {e}")))?;
            Ok(Some(Sender::Aws(providers)))
        }
    }
}

/// Where SNS may be trusted: the configured certificate URL prefixes, or AWS's own for the
/// region. The webhook verifies certificates from them; the workers confirm
/// subscriptions at them.
fn sns_prefixes(
    configured: &[gatehouse_api::sns::CertUrlPrefix],
) -> Result<Vec<gatehouse_api::sns::CertUrlPrefix>, RunError> {
    use gatehouse_api::sns::CertUrlPrefix;
    Ok(if configured.is_empty() {
        let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_owned());
        vec![CertUrlPrefix::default_for_region(&region).map_err(|e| {
            RunError::Config(format!(
                "AWS_REGION: not usable in an SNS certificate URL ({e})"
            ))
        })?]
    } else {
        configured.to_vec()
    })
}

/// The SNS webhook's verifier: the one place that decides which messages are believed.
fn sns_verifier(
    prefixes: Vec<gatehouse_api::sns::CertUrlPrefix>,
    topics: Vec<gatehouse_api::sns::TopicArn>,
) -> Result<gatehouse_api::sns::Verifier, RunError> {
    use gatehouse_api::sns::{CertUrlPolicy, TopicPolicy, Verifier};
    if topics.is_empty() {
        tracing::warn!(
            "GATEHOUSE_SNS_TOPIC_ARNS is unset: the SNS webhook accepts no message (no bounces, complaints or inbound STOP)"
        );
    }
    Verifier::with_http(CertUrlPolicy::new(prefixes), TopicPolicy::new(topics))
        .map_err(|e| RunError::Config(format!("SNS certificate fetcher: {e}")))
}

async fn serve(
    args: ServeArgs,
    metrics: gatehouse_telemetry::PrometheusText,
) -> Result<(), RunError> {
    let sender = delivery_provider(&args.delivery, args.no_workers).await?;
    let codes_go = sender.as_ref().map(Sender::describe);
    let redis = args.redis.settings();
    let queue = match redis {
        Some(_) => Queue::Redis {
            fair_burst: args.tuning.fair_burst,
        },
        None => Queue::InProcess,
    };
    let store = store_config(&args.common, |c| {
        c.redis = redis;
        c.login_rate_per_ip_per_minute = args.login_rate_per_ip_per_minute;
        c.session_policy = SessionPolicy {
            absolute: chrono::Duration::hours(i64::from(args.session_absolute_hours)),
            idle: chrono::Duration::minutes(i64::from(args.session_idle_minutes)),
        };
        c.sms_numbers = args.delivery.sms_numbers();
    })?;
    let prefixes = sns_prefixes(&args.sns_cert_url_prefixes)?;
    let subscribe_url_prefixes: Vec<String> =
        prefixes.iter().map(|p| p.as_str().to_owned()).collect();
    let plan = Plan {
        store,
        clock: Arc::new(SystemClock),
        migrate: !args.no_migrate,
        demo: args.demo,
        listen: args.listen,
        public_url: args.public_url.clone(),
        http_workers: None,
        shutdown_timeout: 10,
        trusted_proxies: args.trusted_proxies.clone(),
        sns: sns_verifier(prefixes, args.sns_topic_arns.clone())?,
        metrics: Some(Arc::new(Metrics(metrics))),
        workers: sender
            .map(|s| s.into_worker_config(&args.delivery, &args.tuning, subscribe_url_prefixes)),
        queue,
    };
    let running = wiring::build(plan).await?;
    if args.demo {
        print_demo(
            &running.seeded,
            (args.listen, &running.public_url),
            codes_go.as_deref(),
        );
        print_demo_clients(&running.demo_clients, &running.public_url);
    }
    tracing::info!(listen = %running.addr, "gatehouse is ready");
    let result = running.server.await;
    // The API has stopped accepting requests: let the workers finish what was queued.
    stop_workers(running.workers).await;
    result?;
    Ok(())
}

/// The worker's own small HTTP server (`GATEHOUSE_WORKER_LISTEN`): `/healthz` for the
/// orchestrator, `/metrics` for Prometheus. Stopped by the returned handle.
fn worker_probe(
    addr: std::net::SocketAddr,
    metrics: gatehouse_telemetry::PrometheusText,
) -> Result<actix_web::dev::ServerHandle, RunError> {
    use actix_web::{HttpResponse, web};
    let server = HttpServer::new(move || {
        let metrics = metrics.clone();
        App::new()
            .route(
                "/healthz",
                web::get().to(|| async {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(r#"{"status":"ok"}"#)
                }),
            )
            .route(
                "/metrics",
                web::get().to(move || {
                    let text = metrics.render();
                    async move {
                        match text {
                            Ok(t) => HttpResponse::Ok()
                                .content_type(gatehouse_telemetry::prometheus::CONTENT_TYPE)
                                .body(t),
                            Err(e) => {
                                tracing::error!(error = %e, "metrics could not be read");
                                HttpResponse::InternalServerError().finish()
                            }
                        }
                    }
                }),
            )
    })
    .workers(1)
    // SIGTERM is the worker's own to handle: it finishes the sends in flight first.
    .disable_signals()
    .shutdown_timeout(1)
    .bind(addr)
    .map_err(|e| RunError::Config(format!("GATEHOUSE_WORKER_LISTEN {addr}: {e}")))?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    tracing::info!(listen = %addr, "worker serves /healthz and /metrics");
    Ok(handle)
}

/// `gatehouse worker`: the delivery workers alone, on Redis, until SIGTERM or Ctrl-C.
async fn worker(
    args: WorkerArgs,
    metrics: gatehouse_telemetry::PrometheusText,
) -> Result<(), RunError> {
    let Some(redis) = args.redis.settings() else {
        return Err(RunError::Config(
            "gatehouse worker takes its jobs from Redis: set GATEHOUSE_REDIS_URL (the embedded default runs the workers inside `gatehouse serve`)".into(),
        ));
    };
    let sender = delivery_provider(&args.delivery, false).await?;
    let store = open_store(&args.common, |c| {
        c.redis = Some(redis.clone());
        // A worker verifies no passwords.
        c.hash_workers = 1;
        // Inbound STOP and START are processed here: only those to our numbers count.
        c.sms_numbers = args.delivery.sms_numbers();
    })
    .await?;
    if !args.no_migrate {
        store.migrate().await?;
    }
    let subscribe_url_prefixes = sns_prefixes(&args.sns_cert_url_prefixes)?
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    // Bound before the workers start: a taken port stops start-up with nothing running.
    let probe = args
        .listen
        .map(|addr| worker_probe(addr, metrics))
        .transpose()?;
    let workers = wiring::start_workers(
        &store,
        sender.map(|s| s.into_worker_config(&args.delivery, &args.tuning, subscribe_url_prefixes)),
        wiring::redis_queue(&store, Some(redis), args.tuning.fair_burst),
    )?;
    if let Some(s) = &workers {
        tracing::info!(workers = ?s, "gatehouse worker is ready");
    }
    shutdown_signal().await?;
    tracing::info!("stopping: finishing the sends in flight");
    stop_workers(workers).await;
    if let Some(p) = probe {
        p.stop(true).await;
    }
    Ok(())
}

/// `gatehouse seed-scale`: scale data for the load tests.
async fn seed_scale(args: config::SeedScaleArgs) -> Result<(), RunError> {
    use gatehouse_domain::settings::MfaPolicy;
    let store = open_store(&args.common, |_| {}).await?;
    if !args.no_migrate {
        store.migrate().await?;
    }
    let spec = gatehouse_store::scale::ScaleSpec {
        prefix: args.prefix.clone(),
        tenants: args.tenants,
        users_per_tenant: args.users_per_tenant,
        password: SecretString::from(args.password),
        mfa_policy: match args.mfa_policy {
            config::ScalePolicy::Off => MfaPolicy::Off,
            config::ScalePolicy::Suggest => MfaPolicy::Suggest,
            config::ScalePolicy::Require => MfaPolicy::Require,
        },
        mfa_methods: args.mfa_methods,
    };
    let done = store.seed_scale(&spec).await?;
    println!(
        "wrote {} practices ({} to {}) and {} users in {:.1} s (one Argon2id hash: {} ms)",
        done.tenants,
        gatehouse_store::scale::scale_company(&args.prefix, 1),
        gatehouse_store::scale::scale_company(&args.prefix, args.tenants),
        done.users,
        done.writing.as_secs_f64(),
        done.hashing.as_millis()
    );
    Ok(())
}

/// Resolves at SIGTERM (how containers are stopped) or Ctrl-C.
async fn shutdown_signal() -> Result<(), RunError> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

async fn stop_workers(workers: Option<Workers>) {
    if let Some(w) = workers {
        w.shutdown().await;
    }
}

fn print_demo(
    accounts: &[gatehouse_app::accounts::SeededAccount],
    (listen, public_url): (std::net::SocketAddr, &url::Url),
    codes_go: Option<&str>,
) {
    let origin = public_url.origin().ascii_serialization();
    println!("\nDemo accounts (passwords are for this local demo only):");
    for a in accounts {
        println!(
            "  {:<14} {:<12} {:<15} {}",
            a.company, a.username, a.role, a.password
        );
    }
    println!("\nSecond factor (every demo practice requires one):");
    for a in accounts {
        println!("  {}/{}: {}", a.company, a.username, a.mfa);
    }
    if let Some(a) = accounts.iter().find(|a| a.role == "practice_admin") {
        println!(
            "\nSign in in a browser: {origin}/signin?company={}",
            a.company
        );
        println!("\nOr with the JSON API:");
        println!(
            "  curl -s http://{listen}/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"company\":\"{}\",\"username\":\"{}\",\"password\":\"{}\"}}'",
            a.company, a.username, a.password
        );
        println!(
            "Then: curl -s http://{listen}/v1/auth/flows/<flow_id>/verify -H 'content-type: application/json' -d '{{\"method\":\"code\",\"code\":\"<the code sent>\"}}'"
        );
        println!(
            "And:  curl -s http://{listen}/v1/auth/session -H 'authorization: Bearer <session.token>'"
        );
    }
    match codes_go {
        Some(text) => println!("{text}"),
        None => {
            println!("No delivery workers run in this process (--no-workers): codes stay queued.")
        }
    }
    println!("API reference: http://{listen}/docs\n");
}

/// The demo's OpenID Connect clients, and an authorization URL to open in a browser.
fn print_demo_clients(clients: &[gatehouse_app::oidc::IssuedClient], public_url: &url::Url) {
    use secrecy::ExposeSecret;
    let Some(first) = clients.first() else {
        return;
    };
    let issuer = public_url.origin().ascii_serialization();
    println!("OpenID Connect (issuer {issuer}):");
    for c in clients {
        match &c.client_secret {
            Some(s) => println!(
                "  confidential client: client_id {}  client_secret {}",
                c.client.client_id,
                s.expose_secret()
            ),
            None => println!("  public client:       client_id {}", c.client.client_id),
        }
    }
    let redirect = first
        .client
        .redirect_uris
        .first()
        .cloned()
        .unwrap_or_default();
    println!("  redirect URI:        {redirect}");
    if let Some(uri) = first.client.post_logout_redirect_uris.first() {
        println!("  post-logout URI:     {uri}");
    }
    // RFC 7636 Appendix B's verifier, so that the printed exchange can be typed by hand.
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let mut url = public_url.clone();
    url.set_path("/oauth2/authorize");
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &first.client.client_id)
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "demo-state")
        .append_pair("nonce", "demo-nonce")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    println!("  Open in a browser:   {url}");
    println!(
        "  Then exchange the code (code_verifier dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk):\n    curl -s {issuer}/oauth2/token -u {}:<client_secret> -d grant_type=authorization_code \\\n      -d code=<code> -d redirect_uri={redirect} -d code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk\n",
        first.client.client_id
    );
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let (format, service, process, otlp) = match &cli.command {
        Command::Serve(a) => (a.common.log_format, "gatehouse-api", "api", true),
        Command::Worker(a) => (a.common.log_format, "gatehouse-worker", "worker", true),
        Command::Migrate(a) => (a.log_format, "gatehouse", "migrate", false),
        Command::Bootstrap(a) => (a.common.log_format, "gatehouse", "bootstrap", false),
        Command::ApproveOperator(a) => {
            (a.common.log_format, "gatehouse", "approve-operator", false)
        }
        Command::SeedScale(a) => (a.common.log_format, "gatehouse", "seed-scale", false),
        Command::Keys(k) => match &k.action {
            KeysAction::Rotate(a) => (a.common.log_format, "gatehouse", "keys", false),
        },
    };
    let telemetry = match init_telemetry(format, service, process, otlp) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: telemetry: {e}");
            return ExitCode::FAILURE;
        }
    };
    telemetry.log_configuration();
    let result = match cli.command {
        Command::Serve(args) => serve(args, telemetry.prometheus()).await,
        Command::Worker(args) => worker(args, telemetry.prometheus()).await,
        Command::Migrate(common) => {
            async {
                let store = open_store(&common, |_| {}).await?;
                store.migrate().await?;
                println!("migrations applied");
                Ok(())
            }
            .await
        }
        Command::Bootstrap(args) => {
            async {
                let store = open_store(&args.common, |_| {}).await?;
                if !args.no_migrate {
                    store.migrate().await?;
                }
                let outcome = gatehouse_app::App::new(store)
                    .accounts()
                    .bootstrap(
                        &args.username,
                        &args.email,
                        SecretString::from(args.password),
                    )
                    .await?;
                match outcome {
                    BootstrapOutcome::Created => println!(
                        "created operator tenant '{}' and support_admin '{}'",
                        args.common.operator_company, args.username
                    ),
                    BootstrapOutcome::AlreadyPresent => {
                        println!("operator tenant already has a support_admin; nothing to do")
                    }
                }
                Ok(())
            }
            .await
        }
        Command::ApproveOperator(args) => {
            async {
                let store = open_store(&args.common, |_| {}).await?;
                if !args.no_migrate {
                    store.migrate().await?;
                }
                let user = gatehouse_app::App::new(store)
                    .admin()
                    .approve_operator_from_server(&args.username)
                    .await?;
                println!(
                    "approved operator account '{}' ({})",
                    user.username,
                    user.role.as_str()
                );
                Ok(())
            }
            .await
        }
        Command::SeedScale(args) => seed_scale(args).await,
        Command::Keys(KeysArgs {
            action: KeysAction::Rotate(args),
        }) => {
            async {
                let store = open_store(&args.common, |_| {}).await?;
                if !args.no_migrate {
                    store.migrate().await?;
                }
                let app = gatehouse_app::App::new(store);
                // Keys do not depend on the issuer they are used under.
                let oidc = app.oidc("");
                let kid = oidc.rotate_key(args.publish_for).await?;
                println!(
                    "new signing key {kid}: published now, signing in {} s",
                    args.publish_for.num_seconds()
                );
                Ok(())
            }
            .await
        }
    };
    // What is still buffered goes out before the process ends.
    telemetry.shutdown();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "gatehouse stopped");
            eprintln!("error: {e}");
            if let RunError::Store(gatehouse_store::StoreError::Domain(d)) = &e {
                eprintln!("  {d:?}");
            }
            ExitCode::FAILURE
        }
    }
}
