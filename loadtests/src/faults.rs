//! `gatehouse-loadtests faults`: the chaos runs of issue 22, repeated on real processes.
//! PostgreSQL, a Redis of the run's own (so it can be killed without touching anyone
//! else's), `gatehouse serve --no-workers` and `gatehouse worker` with outbox delivery,
//! on scale data. Three runs:
//!
//! - (a) a backlog of codes queued while no worker runs; a worker starts and is killed
//!   (`kill -9`) 5 ms after its first send; users type each code as soon as it is in the
//!   outbox; the worker is started again.
//! - (b) the same, killed 20 to 30 ms after its first send, and users type their codes
//!   only once every delivery has settled (so interrupted sends are sent again).
//! - (c) sign-ins at a steady rate while Redis is killed for 5 s and started again; users
//!   type their codes as they arrive.
//!
//! Each prints: codes accepted, delivered (in the outbox), delivered twice (one delivery
//! in the outbox twice), lost (never arrived), still verifying (arrived, sign-in not
//! finished), recorded `failed` while used, the worst login-to-provider delay, and how
//! many of the twice-sent deliveries show the unknown attempt in their history and in
//! their `mfa.code_sent` audit; (c) also the sign-in latency with Redis up and down.
//! Traffic goes to 127.0.0.1 only; every run is bounded in time and count.

use crate::api::{Account, Call, Client, Http, login};
use crate::flaw::Flaw;
use crate::mailbox::code_in;
use crate::procs::{Env, Service, free_port};
use crate::run::{PASSWORD, account, psql, random_key, start_worker, with_database};
use chrono::{DateTime, Utc};
use gatehouse_store::scale::scale_method;
use serde_json::json;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// How big and how long.
#[derive(Debug, Clone)]
pub struct Sizes {
    pub tenants: u32,
    pub users_per_tenant: u32,
    /// How long a run waits for its codes to settle (arrive, be used, be sent again).
    pub bound: Duration,
    /// Run (c): sign-ins per second, and Redis up before and after the outage.
    pub rate: u32,
    pub up: Duration,
    pub outage: Duration,
    /// `GATEHOUSE_REQUEUE_AFTER_SECONDS` (None: the default, 30).
    pub requeue_after: Option<u32>,
}

impl Sizes {
    /// The size: 12 practices x 100 users (the 600 with email codes sign in).
    pub fn full() -> Sizes {
        Sizes {
            tenants: 12,
            users_per_tenant: 100,
            bound: Duration::from_secs(150),
            rate: 30,
            up: Duration::from_secs(6),
            outage: Duration::from_secs(5),
            requeue_after: None,
        }
    }

    /// CI: the same runs on 44 users.
    pub fn smoke() -> Sizes {
        Sizes {
            tenants: 4,
            users_per_tenant: 24,
            bound: Duration::from_secs(150),
            rate: 4,
            up: Duration::from_secs(2),
            outage: Duration::from_secs(5),
            // An interrupted send waits out the 60 s claim lease; then at most 2.5 s for
            // the re-enqueue's next pass, not 15 s.
            requeue_after: Some(5),
        }
    }
}

pub struct Options {
    pub binary: PathBuf,
    pub out: PathBuf,
    pub postgres_url: String,
    pub sizes: Sizes,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub name: String,
    pub accepted: usize,
    pub delivered: usize,
    pub twice: usize,
    pub lost: usize,
    pub still_verifying: usize,
    pub failed_while_used: u64,
    pub worst_delay_ms: f64,
    /// Of the deliveries sent twice: with an `unknown` attempt in their history, and
    /// with it in their `mfa.code_sent` audit.
    pub twice_in_history: u64,
    pub twice_in_audit: u64,
    /// The deliveries' statuses at the end.
    pub statuses: BTreeMap<String, u64>,
    /// Run (c): sign-in latency p50 and p99 (ms) with Redis up and down, and the worst
    /// login-to-provider delay of the codes asked for while it was down.
    pub redis: Option<RedisFigures>,
    pub took: Duration,
}

#[derive(Debug, Clone, Default)]
pub struct RedisFigures {
    pub up_p50: f64,
    pub up_p99: f64,
    pub up_n: usize,
    pub down_p50: f64,
    pub down_p99: f64,
    pub down_n: usize,
    pub worst_delay_down_ms: f64,
}

impl Figures {
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}: accepted {}, delivered {}, delivered twice {} ({} with the unknown attempt in the history, {} in the audit), lost {}, still verifying {}, recorded failed while used {}, worst login-to-provider {:.0} ms; statuses {:?}; {:.0} s",
            self.name,
            self.accepted,
            self.delivered,
            self.twice,
            self.twice_in_history,
            self.twice_in_audit,
            self.lost,
            self.still_verifying,
            self.failed_while_used,
            self.worst_delay_ms,
            self.statuses,
            self.took.as_secs_f64(),
        );
        if let Some(r) = &self.redis {
            s.push_str(&format!(
                "; sign-in with Redis up p50 {:.1} ms p99 {:.1} ms ({} sign-ins), down p50 {:.1} ms p99 {:.1} ms ({}), p99 down/up {:.2}; worst login-to-provider of codes asked while down {:.0} ms",
                r.up_p50,
                r.up_p99,
                r.up_n,
                r.down_p50,
                r.down_p99,
                r.down_n,
                r.down_p99 / r.up_p99.max(f64::MIN_POSITIVE),
                r.worst_delay_down_ms
            ));
        }
        s
    }
}

/// A Redis server of the run's own, on a port of its own, without persistence.
struct Redis {
    port: u16,
    child: Option<Child>,
    dir: PathBuf,
}

impl Redis {
    async fn start(dir: &Path) -> Result<Redis, Flaw> {
        let mut r = Redis {
            port: free_port()?,
            child: None,
            dir: dir.to_owned(),
        };
        r.up().await?;
        Ok(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn up(&mut self) -> Result<(), Flaw> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("redis.log"))
            .map_err(|e| Flaw(format!("redis log: {e}")))?;
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .map_err(|e| Flaw(format!("redis log: {e}")))?,
            )
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| Flaw(format!("redis-server: {e}")))?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut c) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err(Flaw("the run's redis-server did not answer in 10 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// `kill -9`.
    async fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }
}

/// One outbox line as the run reads it (the code stays in this process).
#[derive(Debug, Clone)]
struct Line {
    at: DateTime<Utc>,
    to: String,
    delivery: String,
    code: Option<String>,
}

/// Reads the lines appended to the outbox since the last read.
struct Tail {
    path: PathBuf,
    offset: u64,
}

impl Tail {
    fn from_end(path: &Path) -> Tail {
        Tail {
            path: path.to_owned(),
            offset: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        }
    }

    fn read(&mut self) -> Vec<Line> {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else {
            return Vec::new();
        };
        if f.seek(SeekFrom::Start(self.offset)).is_err() {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_err() {
            return Vec::new();
        }
        // Only whole lines: a line being written is read next time.
        let Some(end) = buf.iter().rposition(|b| *b == b'\n') else {
            return Vec::new();
        };
        self.offset += end as u64 + 1;
        buf[..end]
            .split(|b| *b == b'\n')
            .filter_map(|l| serde_json::from_slice::<serde_json::Value>(l).ok())
            .filter_map(|v| {
                Some(Line {
                    at: DateTime::parse_from_rfc3339(v["at"].as_str()?)
                        .ok()?
                        .with_timezone(&Utc),
                    to: v["to"].as_str()?.to_owned(),
                    delivery: v["delivery_id"].as_str()?.to_owned(),
                    code: v["body"].as_str().and_then(code_in),
                })
            })
            .collect()
    }
}

/// One sign-in whose code was sent.
#[derive(Debug, Clone)]
struct Issued {
    account: Account,
    flow: String,
    answered: DateTime<Utc>,
    /// Asked for while Redis was down (run (c)).
    down: bool,
    first: Option<Line>,
    verifying: bool,
    verified: bool,
}

#[derive(Default)]
struct State {
    by_to: HashMap<String, Issued>,
    lines: HashMap<String, u32>,
    /// Lines read before their sign-in's answer was: a code can reach the provider before
    /// the login's answer reaches this program.
    early: Vec<Line>,
}

impl State {
    /// Takes `lines` in, and gives each sign-in its first line once both are known.
    fn take_lines(&mut self, lines: Vec<Line>) {
        for l in lines {
            *self.lines.entry(l.delivery.clone()).or_default() += 1;
            self.early.push(l);
        }
        for l in std::mem::take(&mut self.early) {
            match self.by_to.get_mut(&l.to) {
                Some(i)
                    if i.first.is_none() && l.at >= i.answered - chrono::Duration::seconds(1) =>
                {
                    i.first = Some(l);
                }
                // A resend, or a line of an earlier sign-in of the same user.
                Some(_) => {}
                None => self.early.push(l),
            }
        }
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(s: &Shared) -> std::sync::MutexGuard<'_, State> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// Signs `a` in; answers the issued code's record (`None` when no code was sent).
async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    a: &Account,
    down: bool,
) -> Result<(Option<Issued>, Duration), Flaw> {
    let mut client = Client {
        http: http.clone(),
        base: base.to_owned(),
    };
    let started = Instant::now();
    let flow = login(&mut client, "login", a, PASSWORD).await?;
    let took = started.elapsed();
    if !flow["mfa"]["code_sent"]["channel"].is_string() {
        return Ok((None, took));
    }
    let id = flow["flow_id"]
        .as_str()
        .ok_or_else(|| Flaw(format!("no flow id in {flow}")))?;
    Ok((
        Some(Issued {
            account: a.clone(),
            flow: id.to_owned(),
            answered: Utc::now(),
            down,
            first: None,
            verifying: false,
            verified: false,
        }),
        took,
    ))
}

async fn verify(http: reqwest::Client, base: String, i: Issued, code: String) -> bool {
    let mut client = Client { http, base };
    let r = client
        .call(Call::post(
            "verify",
            format!("/v1/auth/flows/{}/verify", i.flow),
            json!({"method": "code", "code": code}),
            &i.account.ip,
        ))
        .await;
    matches!(r, Ok(a) if a.body["status"] == "authenticated")
}

/// Reads the outbox into the state every 2 ms; with `verify_now`, types each code as
/// soon as it is there. Stops when `stop` is set.
fn tail_outbox(
    outbox: &Path,
    state: Shared,
    verify_now: Arc<std::sync::atomic::AtomicBool>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    http: reqwest::Client,
    base: String,
) -> tokio::task::JoinHandle<()> {
    use std::sync::atomic::Ordering;
    let mut tail = Tail::from_end(outbox);
    tokio::spawn(async move {
        let mut verifying = tokio::task::JoinSet::new();
        loop {
            let lines = tail.read();
            let now_verify = verify_now.load(Ordering::SeqCst);
            {
                let mut s = lock(&state);
                s.take_lines(lines);
                if now_verify {
                    for i in s.by_to.values_mut() {
                        if let (false, Some(code)) =
                            (i.verifying, i.first.as_ref().and_then(|l| l.code.clone()))
                        {
                            i.verifying = true;
                            let (http, base, issued) = (http.clone(), base.clone(), i.clone());
                            verifying.spawn(async move {
                                let ok = verify(http, base, issued.clone(), code).await;
                                (issued.account.email, ok)
                            });
                        }
                    }
                }
            }
            while let Some(done) = verifying.try_join_next() {
                if let Ok((to, ok)) = done {
                    let mut s = lock(&state);
                    if let Some(i) = s.by_to.get_mut(&to) {
                        i.verified = ok;
                    }
                }
            }
            if stop.load(Ordering::SeqCst) && verifying.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
}

async fn query(url: &str, sql: &str) -> Result<String, Flaw> {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
        .output()
        .await
        .map_err(|e| Flaw(format!("psql: {e}")))?;
    if !out.status.success() {
        return Err(Flaw(format!(
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

async fn count(url: &str, sql: &str) -> Result<u64, Flaw> {
    query(url, sql)
        .await?
        .parse()
        .map_err(|e| Flaw(format!("{sql}: {e}")))
}

/// The run's processes and data.
struct Rig {
    env: Env,
    base: String,
    database_url: String,
    outbox: PathBuf,
    redis: Redis,
    api: Option<Service>,
    worker: Option<Service>,
    http: reqwest::Client,
    accounts: Vec<Account>,
}

/// Every account with an email code, practices interleaved.
fn code_accounts(sz: &Sizes) -> Vec<Account> {
    let mut out = Vec::new();
    for u in 1..sz.users_per_tenant {
        if scale_method(u).as_str() == "email" {
            for n in 1..=sz.tenants {
                out.push(account("fault", n, u));
            }
        }
    }
    out
}

pub async fn run(opts: &Options) -> Result<Vec<Figures>, Flaw> {
    let dir = &opts.out;
    std::fs::create_dir_all(dir).map_err(|e| Flaw(format!("{}: {e}", dir.display())))?;
    let redis = Redis::start(dir).await?;
    let pg_db = format!("gatehouse_faults_{}", uuid::Uuid::new_v4().simple());
    psql(&opts.postgres_url, &format!("CREATE DATABASE {pg_db}")).await?;
    let database_url = with_database(&opts.postgres_url, &pg_db);
    let port = free_port()?;
    let outbox = dir.join("outbox.jsonl");
    let mut vars = BTreeMap::new();
    for (k, v) in [
        ("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}")),
        ("GATEHOUSE_SECRET_KEY", random_key()),
        ("GATEHOUSE_DELIVERY", "outbox".into()),
        ("GATEHOUSE_OUTBOX_PATH", outbox.display().to_string()),
        ("GATEHOUSE_TRUSTED_PROXIES", "127.0.0.1/32".into()),
        ("GATEHOUSE_SCALE_PASSWORD", PASSWORD.into()),
        ("GATEHOUSE_REDIS_URL", redis.url()),
        ("GATEHOUSE_REDIS_PREFIX", pg_db.clone()),
        ("GATEHOUSE_DATABASE_URL", database_url.clone()),
        ("RUST_LOG", "info".into()),
    ] {
        vars.insert(k.to_owned(), v);
    }
    if let Some(r) = opts.sizes.requeue_after {
        vars.insert("GATEHOUSE_REQUEUE_AFTER_SECONDS".into(), r.to_string());
    }
    let env = Env {
        binary: opts.binary.clone(),
        dir: dir.clone(),
        vars,
    };
    // Idle connections are dropped before the server's keep-alive (5 s) ends them: a
    // sign-in sent on a connection the server is closing fails without an answer.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| Flaw(format!("http client: {e}")))?;
    let mut rig = Rig {
        env,
        base: format!("http://127.0.0.1:{port}"),
        database_url,
        outbox,
        redis,
        api: None,
        worker: None,
        http,
        accounts: code_accounts(&opts.sizes),
    };
    let result = runs(opts, &mut rig).await;
    if let Some(w) = rig.worker.take() {
        let _ = w.stop().await;
    }
    if let Some(a) = rig.api.take() {
        let _ = a.stop().await;
    }
    rig.redis.down().await;
    let _ = psql(
        &opts.postgres_url,
        &format!("DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"),
    )
    .await;
    result
}

async fn runs(opts: &Options, rig: &mut Rig) -> Result<Vec<Figures>, Flaw> {
    let sz = &opts.sizes;
    rig.env
        .run(
            &[
                "seed-scale",
                "--prefix",
                "fault",
                "--tenants",
                &sz.tenants.to_string(),
                "--users-per-tenant",
                &sz.users_per_tenant.to_string(),
                "--mfa-policy",
                "require",
                "--mfa-methods",
            ],
            "seed.log",
        )
        .await?;
    let mut api = rig
        .env
        .spawn("serve", &["serve", "--no-workers", "--no-migrate"])?;
    api.ready(&format!("{}/readyz", rig.base)).await?;
    rig.api = Some(api);
    let mut figures = Vec::new();
    eprintln!("--> (a) kill -9 the worker 5 ms after its first send; users type codes at once");
    figures.push(
        kill_run(
            opts,
            rig,
            "(a) worker killed 5 ms after its first send",
            5..=5,
            true,
        )
        .await?,
    );
    eprintln!("    {}", figures[0].line());
    eprintln!("--> (b) kill -9 the worker 20-30 ms after its first send");
    figures.push(
        kill_run(
            opts,
            rig,
            "(b) worker killed 20-30 ms after its first send",
            20..=30,
            false,
        )
        .await?,
    );
    eprintln!("    {}", figures[1].line());
    eprintln!("--> (c) Redis killed for {:?} during sign-ins", sz.outage);
    figures.push(redis_run(opts, rig).await?);
    eprintln!("    {}", figures[2].line());
    Ok(figures)
}

/// Signs in every account, `parallel` at once; answers how many codes were accepted.
async fn backlog(rig: &Rig, state: &Shared, parallel: usize) -> Result<usize, Flaw> {
    let pool = Arc::new(Mutex::new(rig.accounts.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel {
        let (pool, state, http, base) = (
            pool.clone(),
            state.clone(),
            rig.http.clone(),
            rig.base.clone(),
        );
        tasks.spawn(async move {
            let mut n = 0;
            loop {
                let next = pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
                let Some(a) = next else { break };
                if let (Some(i), _) = sign_in(&http, &base, &a, false).await? {
                    lock(&state).by_to.insert(a.email.clone(), i);
                    n += 1;
                }
            }
            Ok::<usize, Flaw>(n)
        });
    }
    let mut n = 0;
    while let Some(r) = tasks.join_next().await {
        n += r.map_err(|e| Flaw(e.to_string()))??;
    }
    Ok(n)
}

/// Waits until every code arrived (and, with `used`, was used) and no delivery of the run
/// is still queued, or the bound passes.
async fn settle(
    rig: &Rig,
    state: &Shared,
    since: &str,
    used: bool,
    bound: Duration,
) -> Result<(), Flaw> {
    let started = Instant::now();
    let queued = format!(
        "SELECT count(*) FROM deliveries WHERE created_at >= '{since}' AND status = 'queued'"
    );
    loop {
        let waiting = {
            let s = lock(state);
            s.by_to
                .values()
                .any(|i| i.first.is_none() || (used && !i.verified))
        };
        if !waiting && count(&rig.database_url, &queued).await? == 0 {
            return Ok(());
        }
        if started.elapsed() > bound {
            eprintln!("    (bound of {bound:?} reached before every code settled)");
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn kill_run(
    opts: &Options,
    rig: &mut Rig,
    name: &str,
    after_first_send_ms: std::ops::RangeInclusive<u64>,
    verify_at_once: bool,
) -> Result<Figures, Flaw> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let started = Instant::now();
    let since = Utc::now().to_rfc3339();
    let state: Shared = Arc::default();
    let accepted = backlog(rig, &state, 8).await?;
    let verify_now = Arc::new(AtomicBool::new(verify_at_once));
    let stop = Arc::new(AtomicBool::new(false));
    let tail = tail_outbox(
        &rig.outbox,
        state.clone(),
        verify_now.clone(),
        stop.clone(),
        rig.http.clone(),
        rig.base.clone(),
    );
    // A worker starts on the backlog; it is killed a few ms after its first send.
    let before = std::fs::metadata(&rig.outbox).map(|m| m.len()).unwrap_or(0);
    let probe = free_port()?;
    let mut env = rig.env.clone();
    env.vars.insert(
        "GATEHOUSE_WORKER_LISTEN".into(),
        format!("127.0.0.1:{probe}"),
    );
    let worker = env.spawn("worker", &["worker", "--no-migrate"])?;
    let spawned = Instant::now();
    while std::fs::metadata(&rig.outbox).map(|m| m.len()).unwrap_or(0) <= before {
        if spawned.elapsed() > Duration::from_secs(60) {
            return Err(Flaw("the worker sent nothing in 60 s".into()));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let wait = {
        let (lo, hi) = (*after_first_send_ms.start(), *after_first_send_ms.end());
        lo + rand::random::<u64>() % (hi - lo + 1)
    };
    tokio::time::sleep(Duration::from_millis(wait)).await;
    worker.kill9().await?;
    let sent_before_kill = {
        let len = std::fs::metadata(&rig.outbox).map(|m| m.len()).unwrap_or(0);
        len.saturating_sub(before)
    };
    eprintln!(
        "    killed {wait} ms after the first send ({} bytes of outbox by then)",
        sent_before_kill
    );
    rig.worker = Some(start_worker(&rig.env).await?);
    settle(rig, &state, &since, verify_at_once, opts.sizes.bound).await?;
    if !verify_at_once {
        // The users type their codes now.
        verify_now.store(true, Ordering::SeqCst);
        let until = Instant::now();
        loop {
            let open = lock(&state)
                .by_to
                .values()
                .any(|i| i.first.is_some() && !i.verified && !i.verifying);
            let busy = lock(&state)
                .by_to
                .values()
                .any(|i| i.verifying && !i.verified);
            if (!open && !busy) || until.elapsed() > Duration::from_secs(30) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Their uses are recorded; nothing is queued any more.
        settle(rig, &state, &since, false, Duration::from_secs(10)).await?;
    }
    stop.store(true, Ordering::SeqCst);
    let _ = tail.await;
    // The next run starts with no worker: its codes queue up.
    if let Some(w) = rig.worker.take() {
        w.stop().await?;
    }
    let mut f = tally(rig, &state, &since, name, accepted).await?;
    f.took = started.elapsed();
    Ok(f)
}

async fn redis_run(opts: &Options, rig: &mut Rig) -> Result<Figures, Flaw> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let sz = &opts.sizes;
    let started = Instant::now();
    let since = Utc::now().to_rfc3339();
    let state: Shared = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    rig.worker = Some(start_worker(&rig.env).await?);
    let tail = tail_outbox(
        &rig.outbox,
        state.clone(),
        Arc::new(AtomicBool::new(true)),
        stop.clone(),
        rig.http.clone(),
        rig.base.clone(),
    );
    let down = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<(bool, Duration)>>> = Arc::default();
    // The sign-ins: `rate` a second, each on its own task, for up + outage + up.
    let total = sz.up * 2 + sz.outage;
    let mut accounts = rig.accounts.clone();
    let (http, base) = (rig.http.clone(), rig.base.clone());
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(sz.rate)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut tasks = tokio::task::JoinSet::new();
    let load_started = Instant::now();
    let mut outage_started = None;
    let mut outage_ended = None;
    while load_started.elapsed() < total {
        tick.tick().await;
        let elapsed = load_started.elapsed();
        if outage_started.is_none() && elapsed >= sz.up {
            rig.redis.down().await;
            down.store(true, Ordering::SeqCst);
            outage_started = Some(Instant::now());
        }
        if outage_ended.is_none() && elapsed >= sz.up + sz.outage {
            rig.redis.up().await?;
            down.store(false, Ordering::SeqCst);
            outage_ended = Some(Instant::now());
        }
        let Some(a) = accounts.pop() else { break };
        let (state, latencies, http, base) =
            (state.clone(), latencies.clone(), http.clone(), base.clone());
        let is_down = down.load(Ordering::SeqCst);
        tasks.spawn(async move {
            let (issued, took) = sign_in(&http, &base, &a, is_down).await?;
            latencies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((is_down, took));
            if let Some(i) = issued {
                lock(&state).by_to.insert(a.email.clone(), i);
                return Ok::<usize, Flaw>(1);
            }
            Ok(0)
        });
    }
    if outage_ended.is_none() {
        rig.redis.up().await?;
    }
    let mut accepted = 0;
    while let Some(r) = tasks.join_next().await {
        accepted += r.map_err(|e| Flaw(e.to_string()))??;
    }
    settle(rig, &state, &since, true, opts.sizes.bound).await?;
    stop.store(true, Ordering::SeqCst);
    let _ = tail.await;
    if let Some(w) = rig.worker.take() {
        w.stop().await?;
    }
    let mut f = tally(
        rig,
        &state,
        &since,
        &format!(
            "(c) Redis killed for {} s during sign-ins",
            sz.outage.as_secs()
        ),
        accepted,
    )
    .await?;
    let l = latencies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let pct = |down: bool, q: f64| {
        let mut v: Vec<f64> = l
            .iter()
            .filter(|(d, _)| *d == down)
            .map(|(_, t)| t.as_secs_f64() * 1000.0)
            .collect();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        (
            v.get(((n as f64 - 1.0) * q).round().max(0.0) as usize)
                .copied()
                .unwrap_or(0.0),
            n,
        )
    };
    let worst_down = lock(&state)
        .by_to
        .values()
        .filter(|i| i.down)
        .filter_map(|i| i.first.as_ref().map(|l| delay_ms(i, l)))
        .fold(0.0, f64::max);
    f.redis = Some(RedisFigures {
        up_p50: pct(false, 0.5).0,
        up_p99: pct(false, 0.99).0,
        up_n: pct(false, 0.5).1,
        down_p50: pct(true, 0.5).0,
        down_p99: pct(true, 0.99).0,
        down_n: pct(true, 0.5).1,
        worst_delay_down_ms: worst_down,
    });
    f.took = started.elapsed();
    Ok(f)
}

fn delay_ms(i: &Issued, l: &Line) -> f64 {
    (l.at - i.answered).num_microseconds().unwrap_or(0) as f64 / 1000.0
}

/// The run's figures, from what the users saw and what the database recorded.
async fn tally(
    rig: &Rig,
    state: &Shared,
    since: &str,
    name: &str,
    accepted: usize,
) -> Result<Figures, Flaw> {
    let (delivered, lost, still, worst, twice_ids) = {
        let s = lock(state);
        let delivered = s.by_to.values().filter(|i| i.first.is_some()).count();
        let lost = s.by_to.values().filter(|i| i.first.is_none()).count();
        let still = s
            .by_to
            .values()
            .filter(|i| i.first.is_some() && !i.verified)
            .count();
        let worst = s
            .by_to
            .values()
            .filter_map(|i| i.first.as_ref().map(|l| delay_ms(i, l)))
            .fold(0.0, f64::max);
        let mine: std::collections::HashSet<&str> = s
            .by_to
            .values()
            .filter_map(|i| i.first.as_ref().map(|l| l.delivery.as_str()))
            .collect();
        let twice: Vec<String> = s
            .lines
            .iter()
            .filter(|(d, n)| **n > 1 && mine.contains(d.as_str()))
            .map(|(d, _)| d.clone())
            .collect();
        (delivered, lost, still, worst, twice)
    };
    let url = &rig.database_url;
    let failed_while_used = count(
        url,
        &format!(
            "SELECT count(*) FROM deliveries d JOIN mfa_challenges c ON c.id = d.challenge_id \
             WHERE d.created_at >= '{since}' AND d.status = 'failed' AND c.used_at IS NOT NULL"
        ),
    )
    .await?;
    let statuses = query(
        url,
        &format!(
            "SELECT status, count(*) FROM deliveries WHERE created_at >= '{since}' GROUP BY status ORDER BY status"
        ),
    )
    .await?
    .lines()
    .filter_map(|l| {
        let (s, n) = l.split_once('|')?;
        Some((s.to_owned(), n.parse().ok()?))
    })
    .collect();
    let (in_history, in_audit) = if twice_ids.is_empty() {
        (0, 0)
    } else {
        let ids = twice_ids
            .iter()
            .filter(|d| uuid::Uuid::parse_str(d).is_ok())
            .map(|d| format!("'{d}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let h = count(
            url,
            &format!(
                "SELECT count(*) FROM deliveries d WHERE d.id IN ({ids}) AND EXISTS \
                 (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.id AND a.outcome = 'unknown')"
            ),
        )
        .await?;
        let a = count(
            url,
            &format!(
                "SELECT count(*) FROM deliveries d WHERE d.id IN ({ids}) AND EXISTS \
                 (SELECT 1 FROM audit_events e WHERE e.tenant_id = d.tenant_id \
                    AND e.action = 'mfa.code_sent' \
                    AND e.details::text LIKE '%' || d.id::text || '%' \
                    AND e.details::text LIKE '%\"unknown\"%')"
            ),
        )
        .await?;
        (h, a)
    };
    Ok(Figures {
        name: name.to_owned(),
        accepted,
        delivered,
        twice: twice_ids.len(),
        lost,
        still_verifying: still,
        failed_while_used,
        worst_delay_ms: worst,
        twice_in_history: in_history,
        twice_in_audit: in_audit,
        statuses,
        redis: None,
        took: Duration::ZERO,
    })
}

/// The figures as a markdown table (one row per run).
pub fn table(figures: &[Figures]) -> String {
    let mut s = String::from(
        "| run | accepted | delivered | delivered twice (in history / audit) | lost | still verifying | failed while used | worst login-to-provider |\n|---|---|---|---|---|---|---|---|\n",
    );
    for f in figures {
        s.push_str(&format!(
            "| {} | {} | {} | {} ({} / {}) | {} | {} | {} | {:.0} ms |\n",
            f.name,
            f.accepted,
            f.delivered,
            f.twice,
            f.twice_in_history,
            f.twice_in_audit,
            f.lost,
            f.still_verifying,
            f.failed_while_used,
            f.worst_delay_ms
        ));
    }
    for f in figures {
        if let Some(r) = &f.redis {
            s.push_str(&format!(
                "\nSign-in latency ({}): Redis up p50 {:.1} ms, p99 {:.1} ms ({} sign-ins); Redis down p50 {:.1} ms, p99 {:.1} ms ({} sign-ins); p99 down/up {:.2}. Worst login-to-provider of the codes asked for while Redis was down: {:.0} ms.\n",
                f.name,
                r.up_p50,
                r.up_p99,
                r.up_n,
                r.down_p50,
                r.down_p99,
                r.down_n,
                r.down_p99 / r.up_p99.max(f64::MIN_POSITIVE),
                r.worst_delay_down_ms
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::{Figures, Issued, Line, State, Tail};
    use crate::run::account;
    use chrono::Utc;
    use std::io::Write;

    #[test]
    fn a_line_read_before_its_sign_in_was_answered_is_still_its_first() {
        let a = account("fault", 1, 3);
        let now = Utc::now();
        let line = |delivery: &str| Line {
            at: now,
            to: a.email.clone(),
            delivery: delivery.to_owned(),
            code: Some("123456".to_owned()),
        };
        let mut s = State::default();
        s.take_lines(vec![line("d-1")]);
        assert_eq!(s.early.len(), 1);
        s.by_to.insert(
            a.email.clone(),
            Issued {
                account: a.clone(),
                flow: "f".to_owned(),
                answered: now,
                down: false,
                first: None,
                verifying: false,
                verified: false,
            },
        );
        s.take_lines(vec![line("d-2")]);
        let first = s.by_to.get(&a.email).and_then(|i| i.first.clone());
        assert_eq!(first.map(|l| l.delivery), Some("d-1".to_owned()));
        assert!(s.early.is_empty());
        assert_eq!(s.lines.len(), 2);
    }

    #[test]
    fn the_tail_reads_whole_lines_once_and_a_half_written_one_later() {
        let dir = std::env::temp_dir().join(format!("faults-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("outbox.jsonl");
        std::fs::write(&path, "{\"old\": true}\n").unwrap();
        let mut tail = Tail::from_end(&path);
        let line = |d: &str| {
            format!(
                "{{\"at\":\"2026-12-06T07:00:00.123Z\",\"channel\":\"email\",\"to\":\"a@b.example.com\",\"subject\":\"s\",\"body\":\"Your code is 048213.\",\"company\":\"c\",\"purpose\":\"sign_in\",\"delivery_id\":\"{d}\"}}\n"
            )
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        let second = line("d2");
        f.write_all(line("d1").as_bytes()).unwrap();
        f.write_all(&second.as_bytes()[..20]).unwrap();
        let read = tail.read();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].delivery, "d1");
        assert_eq!(read[0].code.as_deref(), Some("048213"));
        f.write_all(&second.as_bytes()[20..]).unwrap();
        let read = tail.read();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].delivery, "d2");
        assert!(tail.read().is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_run_line_names_every_figure_the_smoke_reads() {
        let f = Figures {
            name: "(a) x".into(),
            accepted: 44,
            delivered: 44,
            twice: 3,
            twice_in_history: 3,
            twice_in_audit: 3,
            ..Default::default()
        };
        let l = f.line();
        for part in [
            "accepted 44,",
            "delivered 44,",
            "delivered twice 3 (3 with the unknown attempt in the history, 3 in the audit)",
            "lost 0,",
            "still verifying 0,",
            "recorded failed while used 0,",
        ] {
            assert!(l.contains(part), "{part}: {l}");
        }
    }
}
