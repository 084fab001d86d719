//! The `gatehouse` binary: serve, migrate, bootstrap.

mod config;

use actix_web::{App, HttpServer, middleware};
use clap::Parser;
use config::{Cli, Command, CommonArgs, LogFormat, ServeArgs};
use gatehouse_api::ApiState;
use gatehouse_domain::clock::SystemClock;
use gatehouse_domain::session::SessionPolicy;
use gatehouse_store::accounts::BootstrapOutcome;
use gatehouse_store::{Store, StoreConfig};
use secrecy::SecretString;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error("{0}")]
    Store(#[from] gatehouse_store::StoreError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
}

fn init_logging(format: Option<LogFormat>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match format {
        Some(f) => f == LogFormat::Json,
        None => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

async fn open_store(
    common: &CommonArgs,
    tune: impl FnOnce(&mut StoreConfig),
) -> Result<Store, RunError> {
    let keyring = common.keyring().map_err(RunError::Config)?;
    tracing::info!(key_id = keyring.current().id(), "secret key loaded");
    let mut cfg = StoreConfig::new(
        common.database_url.clone(),
        common.operator_company.clone(),
        Arc::new(keyring),
    );
    tune(&mut cfg);
    Ok(Store::connect(cfg, Arc::new(SystemClock)).await?)
}

async fn serve(args: ServeArgs) -> Result<(), RunError> {
    let store = open_store(&args.common, |c| {
        c.login_rate_per_ip_per_minute = args.login_rate_per_ip_per_minute;
        c.session_policy = SessionPolicy {
            absolute: chrono::Duration::hours(i64::from(args.session_absolute_hours)),
            idle: chrono::Duration::minutes(i64::from(args.session_idle_minutes)),
        };
    })
    .await?;
    if !args.no_migrate {
        store.migrate().await?;
    }
    if args.demo {
        let accounts = store.seed_demo().await?;
        print_demo(&accounts, args.listen);
    }
    let state = ApiState {
        store,
        trusted_proxies: Arc::new(args.trusted_proxies.clone()),
    };
    let configure = gatehouse_api::configure(state);
    let server = HttpServer::new(move || {
        App::new()
            // The route template, not the path: a flow id in a path lets its holder finish
            // that sign-in, so it must not reach the logs.
            .wrap(
                middleware::Logger::new("%a \"%{route}xi\" %s %b %Dms")
                    .custom_request_replace("route", |req| {
                        let route = req
                            .match_pattern()
                            .unwrap_or_else(|| "(unmatched)".to_owned());
                        format!("{} {route}", req.method())
                    })
                    .log_target("gatehouse::http"),
            )
            .configure(configure.clone())
    })
    .bind(args.listen)?
    .shutdown_timeout(10);
    tracing::info!(listen = %args.listen, "gatehouse is ready");
    server.run().await?;
    Ok(())
}

fn print_demo(accounts: &[gatehouse_store::accounts::SeededAccount], listen: std::net::SocketAddr) {
    println!("\nDemo accounts (passwords are for this local demo only):");
    for a in accounts {
        println!(
            "  {:<14} {:<12} {:<15} {}",
            a.company, a.username, a.role, a.password
        );
    }
    if let Some(a) = accounts.iter().find(|a| a.role == "practice_admin") {
        println!("\nSign in:");
        println!(
            "  curl -s http://{listen}/v1/auth/login -H 'content-type: application/json' \\\n    -d '{{\"company\":\"{}\",\"username\":\"{}\",\"password\":\"{}\"}}'",
            a.company, a.username, a.password
        );
        println!(
            "Then: curl -s http://{listen}/v1/auth/session -H 'authorization: Bearer <session.token>'"
        );
    }
    println!("API reference: http://{listen}/docs\n");
}

#[actix_web::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve(a) => a.common.log_format,
        Command::Migrate(a) => a.log_format,
        Command::Bootstrap(a) => a.common.log_format,
    };
    init_logging(format);
    let result = match cli.command {
        Command::Serve(args) => serve(args).await,
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
                let outcome = store
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
    };
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
