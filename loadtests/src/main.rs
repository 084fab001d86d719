//! Gatehouse's load tests (O3): `gatehouse-loadtests run` measures, in one run on this
//! machine, the limits named in architecture.md and the service against them, on the
//! embedded default and on PostgreSQL + Redis, runs the clinic-morning scenarios, and
//! writes goose's HTML reports and a markdown summary. Traffic goes to 127.0.0.1 only;
//! every load is bounded in time or count and stops by itself.

mod api;
mod faults;
mod flaw;
mod limits;
mod mailbox;
mod procs;
mod report;
mod run;
mod scenarios;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "Gatehouse load tests: scenarios and the measured limits of this machine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Layouts {
    Embedded,
    Postgres,
    Both,
}

#[derive(Subcommand)]
enum Command {
    /// Measure everything and write the report.
    Run {
        /// Which deployment layouts.
        #[arg(long, value_enum, default_value = "both")]
        layout: Layouts,
        /// A short run on little data (CI): every phase and scenario, briefly.
        #[arg(long)]
        smoke: bool,
        /// The `gatehouse` binary (default: the one beside this program).
        #[arg(long)]
        gatehouse: Option<PathBuf>,
        /// Where the report goes (default: loadtests/results/<UTC time>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// An administrative PostgreSQL URL: a database is created for the run and dropped.
        #[arg(
            long,
            env = "GATEHOUSE_LOAD_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        postgres_url: String,
        #[arg(
            long,
            env = "GATEHOUSE_LOAD_REDIS_URL",
            default_value = "redis://127.0.0.1:6379"
        )]
        redis_url: String,
    },
    /// Issue 22's fault runs on PostgreSQL + a Redis of their own: the worker killed
    /// (`kill -9`) while it drains a backlog, twice, and Redis killed for 5 s during
    /// sign-ins. Prints per run: codes accepted, delivered, delivered twice, lost, still
    /// verifying, recorded `failed` while used, the worst login-to-provider delay.
    Faults {
        /// 4 practices x 24 users instead of 12 x 100 (CI).
        #[arg(long)]
        smoke: bool,
        /// The `gatehouse` binary (default: the one beside this program).
        #[arg(long)]
        gatehouse: Option<PathBuf>,
        /// Where the logs and the outbox go (default: loadtests/results/<UTC time>-faults).
        #[arg(long)]
        out: Option<PathBuf>,
        /// An administrative PostgreSQL URL: a database is created for the run and dropped.
        #[arg(
            long,
            env = "GATEHOUSE_LOAD_POSTGRES_URL",
            default_value = "postgres://postgres@127.0.0.1:5432/postgres"
        )]
        postgres_url: String,
    },
    /// A bare actix-web handler answering a constant (the reference of the session check).
    Bare {
        #[arg(long)]
        listen: String,
    },
    /// Drains an embedded database's queued codes through in-process workers.
    Drain {
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        from: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Bare { listen } => {
            match actix_web::rt::System::new().block_on(limits::serve_bare(&listen)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bare server: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Drain { database_url, from } => {
            let rt = match tokio::runtime::Runtime::new() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(limits::drain(
                &database_url,
                &from,
                Duration::from_secs(300),
            )) {
                Ok(n) => {
                    println!("drained {n} queued codes");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("drain: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Faults {
            smoke,
            gatehouse,
            out,
            postgres_url,
        } => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(run_faults(smoke, gatehouse, out, postgres_url)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("fault runs failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run {
            layout,
            smoke,
            gatehouse,
            out,
            postgres_url,
            redis_url,
        } => {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let layouts = match layout {
                Layouts::Embedded => vec![run::Layout::Embedded],
                Layouts::Postgres => vec![run::Layout::Postgres],
                Layouts::Both => vec![run::Layout::Embedded, run::Layout::Postgres],
            };
            match rt.block_on(run_all(
                layouts,
                smoke,
                gatehouse,
                out,
                postgres_url,
                redis_url,
            )) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("load test failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn gatehouse_binary(gatehouse: Option<PathBuf>) -> Result<PathBuf, flaw::Flaw> {
    let here = std::env::current_exe().map_err(|e| flaw::Flaw(e.to_string()))?;
    let binary = gatehouse.unwrap_or_else(|| here.with_file_name("gatehouse"));
    if !binary.is_file() {
        return Err(flaw::Flaw(format!(
            "no gatehouse binary at {} (build it, or pass --gatehouse)",
            binary.display()
        )));
    }
    Ok(binary)
}

async fn run_faults(
    smoke: bool,
    gatehouse: Option<PathBuf>,
    out: Option<PathBuf>,
    postgres_url: String,
) -> Result<(), flaw::Flaw> {
    let binary = gatehouse_binary(gatehouse)?;
    let out = out.unwrap_or_else(|| {
        PathBuf::from("loadtests/results").join(
            chrono::Utc::now()
                .format("%Y-%m-%dT%H%M%SZ-faults")
                .to_string(),
        )
    });
    std::fs::create_dir_all(&out).map_err(|e| flaw::Flaw(format!("{}: {e}", out.display())))?;
    let out = std::path::absolute(&out).map_err(|e| flaw::Flaw(e.to_string()))?;
    let sizes = if smoke {
        faults::Sizes::smoke()
    } else {
        faults::Sizes::full()
    };
    println!(
        "fault runs: {} practices x {} users (those with email codes sign in); gatehouse {}",
        sizes.tenants,
        sizes.users_per_tenant,
        binary.display()
    );
    let figures = faults::run(&faults::Options {
        binary,
        out: out.clone(),
        postgres_url,
        sizes,
    })
    .await?;
    println!();
    for f in &figures {
        println!("{}", f.line());
    }
    println!("\n{}", faults::table(&figures));
    println!("logs and the outbox: {}", out.display());
    Ok(())
}

async fn run_all(
    layouts: Vec<run::Layout>,
    smoke: bool,
    gatehouse: Option<PathBuf>,
    out: Option<PathBuf>,
    postgres_url: String,
    redis_url: String,
) -> Result<(), flaw::Flaw> {
    let binary = gatehouse_binary(gatehouse)?;
    let date = chrono::Utc::now();
    let out = out.unwrap_or_else(|| {
        PathBuf::from("loadtests/results").join(date.format("%Y-%m-%dT%H%M%SZ").to_string())
    });
    std::fs::create_dir_all(&out).map_err(|e| flaw::Flaw(format!("{}: {e}", out.display())))?;
    let out = std::path::absolute(&out).map_err(|e| flaw::Flaw(e.to_string()))?;
    let sizes = if smoke {
        run::Sizes::smoke()
    } else {
        run::Sizes::full()
    };
    let parameters = format!(
        "{} run: {} practices x {} users (+{} without MFA); Argon2id {} s; each limit {} s with {} connections; dispatch at {} sign-ins/s; {} codes for the worker; clinic morning {} s with {} users; gatehouse {}",
        if smoke { "smoke" } else { "full" },
        sizes.tenants,
        sizes.users_per_tenant,
        sizes.open_tenants,
        sizes.argon2_seconds,
        sizes.phase_seconds,
        sizes.connections,
        sizes.dispatch_rate,
        sizes.queued_codes,
        sizes.morning_seconds,
        sizes.morning_users,
        binary.display()
    );
    let opts = run::Options {
        binary,
        out: out.clone(),
        postgres_url,
        redis_url,
        sizes,
    };
    let mut results = Vec::new();
    for layout in layouts {
        eprintln!("==> measuring {}", layout.name());
        let r = run::layout(&opts, layout).await?;
        println!("\n## {}\n\n{}", r.layout, r.table());
        results.push(r);
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".into());
    let summary = report::markdown(
        &results,
        &parameters,
        &commit,
        &date.format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    let path = out.join("summary.md");
    std::fs::write(&path, summary).map_err(|e| flaw::Flaw(format!("{}: {e}", path.display())))?;
    println!(
        "\nreport: {} (goose's HTML reports beside it)",
        path.display()
    );
    Ok(())
}
