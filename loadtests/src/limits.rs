//! The physical limits the service is compared with, measured on this machine: raw
//! Argon2id verifies per second on all cores, a bare actix-web handler; and the embedded
//! default's in-process workers draining a queue (the embedded layout has no separate
//! worker process, so this process stands in for one, running the same worker code).

use crate::flaw::Flaw;
use gatehouse_domain::password::{HashParams, Workspace, hash_password, verify_password_in};
use secrecy::SecretString;
use std::time::{Duration, Instant};

/// Argon2id verifies per second with the service's parameters, one thread per core, for
/// `seconds`; answers (verifies per second, threads).
pub fn argon2_verifies_per_second(seconds: f64) -> Result<(f64, usize), Flaw> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let params = HashParams::OWASP;
    let password = SecretString::from("Raw-Argon2-Limit-1!".to_owned());
    let hash = hash_password(params, &password).map_err(|e| Flaw(e.to_string()))?;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let total: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut ws = Workspace::default();
                    let mut n = 0usize;
                    while Instant::now() < deadline {
                        let _ = verify_password_in(&mut ws, params, &hash, &password);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    Ok((total as f64 / started.elapsed().as_secs_f64(), threads))
}

/// `gatehouse-loadtests bare`: an actix-web server whose one handler answers a constant,
/// with actix's defaults (a worker per core), as Gatehouse runs.
pub async fn serve_bare(listen: &str) -> std::io::Result<()> {
    use actix_web::{App, HttpResponse, HttpServer, web};
    HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("application/json")
                    .body(r#"{"ok":true}"#)
            }),
        )
    })
    .bind(listen)?
    .run()
    .await
}

/// `gatehouse-loadtests drain`: opens the embedded database, pushes every queued code
/// to in-process workers configured as `gatehouse serve` configures them for the fake
/// provider (AWS settings from the environment, no send-rate limit), and waits until the
/// queue is empty (at most `timeout`). The parent times the sends at the fake.
pub async fn drain(database_url: &str, from: &str, timeout: Duration) -> Result<usize, Flaw> {
    use gatehouse_domain::clock::SystemClock;
    use gatehouse_domain::crypto::{Keyring, SecretKey};
    use gatehouse_store::{Store, StoreConfig};
    use gatehouse_workers::aws::{self, AwsSettings, SesSettings, SmsSettings};
    use std::sync::Arc;
    let key = std::env::var("GATEHOUSE_SECRET_KEY")
        .map_err(|_| Flaw("GATEHOUSE_SECRET_KEY is not set".into()))?;
    let key = SecretKey::parse_base64(&key).map_err(|e| Flaw(e.to_string()))?;
    let operator =
        gatehouse_domain::ids::CompanyId::parse("operator").map_err(|e| Flaw(e.to_string()))?;
    let mut config = StoreConfig::new(database_url, operator, Arc::new(Keyring::new(key)));
    config.hash_workers = 1;
    let store = Store::connect(config, Arc::new(SystemClock))
        .await
        .map_err(|e| Flaw(e.to_string()))?;
    let settings = AwsSettings {
        ses: SesSettings {
            from: from.to_owned(),
            configuration_set: None,
        },
        sms: SmsSettings::default(),
    };
    let delivery = aws::providers_from_env(settings)
        .await
        .map_err(|e| Flaw(e.to_string()))?;
    let mut wc = gatehouse_workers::WorkerConfig::new(Arc::new(delivery.providers));
    wc.sms_opt_outs = Some(delivery.sms_opt_outs);
    let jobs = store
        .deliveries_to_requeue(chrono::Duration::zero(), 1_000_000)
        .await
        .map_err(|e| Flaw(e.to_string()))?;
    let n = jobs.len();
    let workers =
        gatehouse_workers::spawn_in_process(store.clone(), wc).map_err(|e| Flaw(e.to_string()))?;
    for job in jobs {
        workers
            .queue()
            .push_send_code(job)
            .await
            .map_err(|e| Flaw(e.to_string()))?;
    }
    let started = Instant::now();
    loop {
        let left: u64 = store
            .queued_by_channel()
            .await
            .map_err(|e| Flaw(e.to_string()))?
            .into_iter()
            .map(|(_, n)| n)
            .sum();
        if left == 0 || started.elapsed() > timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.shutdown().await;
    Ok(n)
}
