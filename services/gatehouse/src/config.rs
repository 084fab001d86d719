//! Configuration: one typed struct built by clap from flags and environment variables.
//! A bad value stops start-up with a message naming the variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use gatehouse_domain::crypto::{Keyring, SecretKey};
use gatehouse_domain::ids::{CompanyId, EmailAddress};
use gatehouse_domain::sender::{SenderNumber, SmsNumbers};
use gatehouse_workers::aws::{AwsSettings, SesSettings, SmsSettings};
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Gatehouse: sign-in and multi-factor authentication for medical practices.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API (and, unless --no-workers, the delivery workers).
    Serve(ServeArgs),
    /// Run the delivery workers alone, taking jobs from Redis (GATEHOUSE_REDIS_URL).
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate(CommonArgs),
    /// Create the operator tenant and its first support_admin (exit 0 if already there).
    Bootstrap(BootstrapArgs),
    /// Approve a waiting operator account (S4) from the server: how a deployment gets its
    /// second support admin, which no single support admin can approve alone.
    ApproveOperator(ApproveOperatorArgs),
    /// Write scale data for load tests: many practices and users, in bulk (never on a
    /// production database: every user gets the given password).
    SeedScale(SeedScaleArgs),
    /// The OpenID Connect signing keys.
    Keys(KeysArgs),
}

/// `gatehouse keys ...`.
#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
}

/// What to do with the signing keys.
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// Add a new signing key: published in the JWKS at once, signing after --publish-for;
    /// the keys before it stay published until the ID tokens they signed have expired.
    Rotate(RotateArgs),
}

/// `gatehouse keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// How long the new key is published before it signs (clients cache the JWKS):
    /// a number with s, m, h or d, such as 24h or 0.
    #[arg(long, default_value = "24h", value_parser = parse_span)]
    pub publish_for: chrono::Duration,
    /// Do not apply migrations first.
    #[arg(long)]
    pub no_migrate: bool,
}

/// `24h`, `30m`, `90s`, `2d`, or `0`.
fn parse_span(s: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("{s:?} is not a span such as 24h, 30m, 90s, 2d or 0");
    let t = s.trim();
    if t == "0" {
        return Ok(chrono::Duration::zero());
    }
    let (n, unit) = t.split_at(t.len().saturating_sub(1));
    let n: i64 = n.parse().map_err(|_| bad())?;
    if !(0..=365 * 86_400).contains(&n) {
        return Err(bad());
    }
    match unit {
        "s" => Ok(chrono::Duration::seconds(n)),
        "m" => Ok(chrono::Duration::minutes(n)),
        "h" => Ok(chrono::Duration::hours(n)),
        "d" => Ok(chrono::Duration::days(n)),
        _ => Err(bad()),
    }
}

/// An MFA policy for `seed-scale`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ScalePolicy {
    Off,
    Suggest,
    Require,
}

/// `gatehouse seed-scale`.
#[derive(Debug, Clone, Args)]
pub struct SeedScaleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Company ids are PREFIX-00001, PREFIX-00002, ...
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// How many practices.
    #[arg(long, default_value = "10000")]
    pub tenants: u32,
    /// Users per practice: user-0000 (its practice admin), user-0001, ... (staff).
    #[arg(long, default_value = "50")]
    pub users_per_tenant: u32,
    /// Every user's password (hashed once with the service's Argon2id parameters).
    #[arg(long, env = "GATEHOUSE_SCALE_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Every practice's MFA policy.
    #[arg(long, value_enum, default_value = "off")]
    pub mfa_policy: ScalePolicy,
    /// Verified email and phone for every user, and second factors: user numbers 0 and 1
    /// of every 4 by email, 2 by SMS, 3 none yet (they enroll an authenticator).
    #[arg(long)]
    pub mfa_methods: bool,
    /// Do not apply migrations first.
    #[arg(long)]
    pub no_migrate: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Pretty,
}

fn named<T, E: std::fmt::Display>(
    var: &'static str,
    r: Result<T, E>,
    expected: &str,
) -> Result<T, String> {
    r.map_err(|e| format!("{var}: expected {expected} ({e})"))
}

fn parse_database_url(s: &str) -> Result<String, String> {
    if s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://") {
        Ok(s.to_owned())
    } else {
        Err("GATEHOUSE_DATABASE_URL: expected sqlite://... or postgres://...".into())
    }
}

fn parse_company(s: &str) -> Result<CompanyId, String> {
    named(
        "GATEHOUSE_OPERATOR_COMPANY",
        CompanyId::parse(s),
        "a company id of 2-40 a-z, 0-9, '-'",
    )
}

/// An origin: http or https, a host, an optional port, no path, query or fragment.
fn parse_public_url(s: &str) -> Result<url::Url, String> {
    let bad =
        |why: &str| format!("GATEHOUSE_PUBLIC_URL: {why} (e.g. https://signin.vendor.example)");
    let u = url::Url::parse(s.trim()).map_err(|e| bad(&e.to_string()))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("must be http or https"));
    }
    if u.host_str().is_none() || !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must name a host and nothing else"));
    }
    if u.path() != "/" || u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must be an origin, without a path"));
    }
    Ok(u)
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    named(
        "GATEHOUSE_LISTEN",
        s.parse::<SocketAddr>(),
        "address:port such as 127.0.0.1:8080",
    )
}

fn parse_proxy(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|e| {
            format!(
                "GATEHOUSE_TRUSTED_PROXIES: expected comma-separated CIDRs such as 10.0.0.0/8 ({e})"
            )
        })
}

fn parse_rate(s: &str) -> Result<u32, String> {
    named(
        "GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE",
        s.parse::<u32>(),
        "a whole number (0 disables)",
    )
}

fn parse_idle(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if (1..=1440).contains(&v) => Ok(v),
        _ => Err("GATEHOUSE_SESSION_IDLE_MINUTES: expected 1 to 1440".into()),
    }
}

fn parse_absolute(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(v) if (1..=168).contains(&v) => Ok(v),
        _ => Err("GATEHOUSE_SESSION_ABSOLUTE_HOURS: expected 1 to 168".into()),
    }
}

/// How codes reach users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Appended to a JSON-lines file (the embedded default; stands in for the providers).
    Outbox,
    /// Amazon SES (email) and SNS (SMS).
    Aws,
}

fn parse_delivery(s: &str) -> Result<Delivery, String> {
    match s.trim() {
        "outbox" => Ok(Delivery::Outbox),
        "aws" => Ok(Delivery::Aws),
        _ => Err("GATEHOUSE_DELIVERY: expected outbox or aws".into()),
    }
}

fn parse_outbox_path(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        Err("GATEHOUSE_OUTBOX_PATH: expected a file path".into())
    } else {
        Ok(PathBuf::from(s))
    }
}

/// `address` or `Display Name <address>`, the address a valid one; no control characters
/// (the value becomes a mail header).
fn parse_ses_from(s: &str) -> Result<String, String> {
    let bad = || {
        "GATEHOUSE_SES_FROM: expected a sender address such as no-reply@example.com or Example Clinic <no-reply@example.com>".to_owned()
    };
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err(bad());
    }
    let address = match s.strip_suffix('>').and_then(|rest| rest.rsplit_once('<')) {
        Some((name, address)) if !name.trim().is_empty() => address,
        Some(_) => return Err(bad()),
        None => s,
    };
    EmailAddress::parse(address).map_err(|_| bad())?;
    Ok(s.to_owned())
}

/// SES configuration set names: 1 to 64 letters, digits, `_` and `-`.
fn parse_configuration_set(s: &str) -> Result<String, String> {
    let s = s.trim();
    if (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        Ok(s.to_owned())
    } else {
        Err("GATEHOUSE_SES_CONFIGURATION_SET: expected 1 to 64 letters, digits, '_' or '-'".into())
    }
}

/// SMS sender ids: 1 to 11 letters and digits, at least one letter.
fn parse_sender_id(s: &str) -> Result<String, String> {
    let s = s.trim();
    if (1..=11).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric())
        && s.bytes().any(|b| b.is_ascii_alphabetic())
    {
        Ok(s.to_owned())
    } else {
        Err(
            "GATEHOUSE_SMS_SENDER_ID: expected 1 to 11 letters and digits, at least one letter"
                .into(),
        )
    }
}

/// What carriers send from: E.164 (long codes, toll-free numbers) or a 5-6 digit short code.
fn parse_sender_number(var: &str, s: &str) -> Result<SenderNumber, String> {
    SenderNumber::parse(s).map_err(|_| {
        format!(
            "{var}: expected a phone number in E.164 such as +12025550100 (toll-free numbers too), or a 5-6 digit short code such as 50120 or 501-20"
        )
    })
}

fn parse_origination_number(s: &str) -> Result<SenderNumber, String> {
    parse_sender_number("GATEHOUSE_SMS_ORIGINATION_NUMBER", s)
}

fn parse_sns_topic(s: &str) -> Result<gatehouse_api::sns::TopicArn, String> {
    gatehouse_api::sns::TopicArn::parse(s).map_err(|e| {
        format!(
            "GATEHOUSE_SNS_TOPIC_ARNS: expected comma-separated SNS topic ARNs such as arn:aws:sns:us-east-1:123456789012:gatehouse-events ({e})"
        )
    })
}

fn parse_sns_prefix(s: &str) -> Result<gatehouse_api::sns::CertUrlPrefix, String> {
    gatehouse_api::sns::CertUrlPrefix::parse(s.trim()).map_err(|e| {
        format!(
            "GATEHOUSE_SNS_CERT_URL_PREFIXES: expected comma-separated URL prefixes such as https://sns.us-east-1.amazonaws.com/ ({e})"
        )
    })
}

fn parse_opt_in_number(s: &str) -> Result<SenderNumber, String> {
    parse_sender_number("GATEHOUSE_SMS_OPT_IN_NUMBER", s)
}

/// How this process's workers deliver codes.
#[derive(Debug, Clone, Args)]
pub struct DeliveryArgs {
    /// How codes are delivered: outbox (a JSON-lines file) or aws (SES and SNS, configured by
    /// AWS_REGION, AWS_ENDPOINT_URL and the standard AWS credentials).
    #[arg(long = "delivery", env = "GATEHOUSE_DELIVERY", default_value = "outbox", value_parser = parse_delivery)]
    pub kind: Delivery,
    /// The outbox file (GATEHOUSE_DELIVERY=outbox): one JSON line per message.
    #[arg(long, env = "GATEHOUSE_OUTBOX_PATH", default_value = "gatehouse-outbox.jsonl", value_parser = parse_outbox_path)]
    pub outbox_path: PathBuf,
    /// Sender of code emails (required with aws): an address, or Name <address>, verified in SES.
    #[arg(long, env = "GATEHOUSE_SES_FROM", value_parser = parse_ses_from)]
    pub ses_from: Option<String>,
    /// SES configuration set that publishes delivery, bounce and complaint events.
    #[arg(long, env = "GATEHOUSE_SES_CONFIGURATION_SET", value_parser = parse_configuration_set)]
    pub ses_configuration_set: Option<String>,
    /// SMS sender id (1 to 11 letters and digits), where the destination country allows one.
    #[arg(long, env = "GATEHOUSE_SMS_SENDER_ID", value_parser = parse_sender_id)]
    pub sms_sender_id: Option<String>,
    /// The number SMS are sent from (E.164, toll-free, or a short code such as 501-20): the
    /// number users text STOP and START to.
    #[arg(long, env = "GATEHOUSE_SMS_ORIGINATION_NUMBER", value_parser = parse_origination_number)]
    pub sms_origination_number: Option<SenderNumber>,
    /// The number users text START to, named in phone_opted_out answers (E.164, toll-free,
    /// or a short code, shown as written: 501-20 stays 501-20); default: the SMS
    /// origination number
    #[arg(long, env = "GATEHOUSE_SMS_OPT_IN_NUMBER", value_parser = parse_opt_in_number)]
    pub sms_opt_in_number: Option<SenderNumber>,
    /// Minutes between syncs of the SNS SMS opt-out list (aws; the first runs at start).
    #[arg(long, env = "GATEHOUSE_SMS_OPT_OUT_SYNC_MINUTES", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1440))]
    pub sms_opt_out_sync_minutes: u32,
}

impl DeliveryArgs {
    /// The deployment's own SMS numbers: named in answers, and the only ones an inbound
    /// STOP or START may be sent to.
    pub fn sms_numbers(&self) -> SmsNumbers {
        SmsNumbers {
            origination: self.sms_origination_number.clone(),
            opt_in: self.sms_opt_in_number.clone(),
        }
    }

    /// Time between syncs of the SMS opt-out list.
    pub fn opt_out_sync(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.sms_opt_out_sync_minutes) * 60)
    }

    /// The SES and SNS settings for GATEHOUSE_DELIVERY=aws; the error names what is missing.
    pub fn aws_settings(&self) -> Result<AwsSettings, String> {
        let from = self.ses_from.clone().ok_or_else(|| {
            "GATEHOUSE_DELIVERY=aws requires GATEHOUSE_SES_FROM: the SES-verified sender of code emails".to_owned()
        })?;
        Ok(AwsSettings {
            ses: SesSettings {
                from,
                configuration_set: self.ses_configuration_set.clone(),
            },
            sms: SmsSettings {
                sender_id: self.sms_sender_id.clone(),
                origination_number: self.sms_origination_number.clone(),
            },
        })
    }
}

/// Settings every subcommand needs.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Database: sqlite://... or postgres://...
    #[arg(long, env = "GATEHOUSE_DATABASE_URL", default_value = "sqlite://gatehouse.db?mode=rwc", value_parser = parse_database_url)]
    pub database_url: String,
    /// Company id of the vendor's own tenant.
    #[arg(long, env = "GATEHOUSE_OPERATOR_COMPANY", default_value = "operator", value_parser = parse_company)]
    pub operator_company: CompanyId,
    /// Log format (default: pretty on a terminal, else json).
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// The 32-byte secret key, base64: seals TOTP secrets and queued codes, keys code hashes.
    #[arg(long, env = "GATEHOUSE_SECRET_KEY", hide_env_values = true, value_parser = parse_key)]
    pub secret_key: Option<KeyText>,
    /// A file holding the secret key (created with a new key, mode 0600, on the embedded default).
    #[arg(long, env = "GATEHOUSE_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Retired keys (comma-separated, base64) that still open values sealed before a rotation.
    #[arg(long, env = "GATEHOUSE_SECRET_KEY_PREVIOUS", hide_env_values = true, value_delimiter = ',', value_parser = parse_previous_key)]
    pub secret_key_previous: Vec<KeyText>,
}

/// A key as configured; parsed (and so checked) before start-up goes on.
#[derive(Clone)]
pub struct KeyText(pub String);

impl std::fmt::Debug for KeyText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyText(..)")
    }
}

fn check_key(var: &str, s: &str) -> Result<KeyText, String> {
    SecretKey::parse_base64(s)
        .map(|_| KeyText(s.trim().to_owned()))
        .map_err(|e| format!("{var}: {e}"))
}

fn parse_key(s: &str) -> Result<KeyText, String> {
    check_key("GATEHOUSE_SECRET_KEY", s)
}

fn parse_previous_key(s: &str) -> Result<KeyText, String> {
    check_key("GATEHOUSE_SECRET_KEY_PREVIOUS", s)
}

/// The default key file of the embedded mode.
pub const DEFAULT_KEY_FILE: &str = "gatehouse.key";

impl CommonArgs {
    /// Whether this is the embedded default (SQLite), where a missing key is created.
    pub fn embedded(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// The keyring: the configured key, or the key file (created with a new key in
    /// embedded mode), plus any retired keys.
    pub fn keyring(&self) -> Result<Keyring, String> {
        let current = match (&self.secret_key, &self.secret_key_file) {
            (Some(k), _) => {
                SecretKey::parse_base64(&k.0).map_err(|e| format!("GATEHOUSE_SECRET_KEY: {e}"))?
            }
            (None, Some(path)) => read_or_create_key(path, self.embedded())?,
            (None, None) if self.embedded() => {
                read_or_create_key(Path::new(DEFAULT_KEY_FILE), true)?
            }
            (None, None) => {
                return Err(
                    "GATEHOUSE_SECRET_KEY (or GATEHOUSE_SECRET_KEY_FILE) is required with PostgreSQL".into(),
                );
            }
        };
        let mut ring = Keyring::new(current);
        for k in &self.secret_key_previous {
            let key = SecretKey::parse_base64(&k.0)
                .map_err(|e| format!("GATEHOUSE_SECRET_KEY_PREVIOUS: {e}"))?;
            ring = ring.with_previous(key);
        }
        Ok(ring)
    }
}

fn read_or_create_key(path: &Path, create: bool) -> Result<SecretKey, String> {
    let var = "GATEHOUSE_SECRET_KEY_FILE";
    match std::fs::read_to_string(path) {
        Ok(text) => {
            SecretKey::parse_base64(&text).map_err(|e| format!("{var} {}: {e}", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let key = SecretKey::generate(&mut rand::rngs::OsRng);
            // create_new: never overwrite a key another process just wrote.
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("{var}: cannot create {}: {e}", path.display()))?;
            f.write_all(format!("{}\n", key.to_base64()).as_bytes())
                .map_err(|e| format!("{var}: cannot write {}: {e}", path.display()))?;
            tracing::info!(path = %path.display(), key_id = key.id(), "created a new secret key");
            Ok(key)
        }
        Err(e) => Err(format!("{var}: cannot read {}: {e}", path.display())),
    }
}

fn parse_redis_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        Ok(s.to_owned())
    } else {
        Err("GATEHOUSE_REDIS_URL: expected redis://host:port[/db] or rediss://... (TLS)".into())
    }
}

fn parse_redis_prefix(s: &str) -> Result<String, String> {
    let s = s.trim();
    if (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(s.to_owned())
    } else {
        Err("GATEHOUSE_REDIS_PREFIX: expected 1 to 64 letters, digits, '-', '_' or '.'".into())
    }
}

/// Redis, shared by every API and worker process of one deployment.
#[derive(Debug, Clone, Args)]
pub struct RedisArgs {
    /// Redis for the job queue, sign-in rate limits and session-cache invalidation;
    /// unset: everything in-process (one process only).
    #[arg(long, env = "GATEHOUSE_REDIS_URL", hide_env_values = true, value_parser = parse_redis_url)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel (lets deployments share one Redis).
    #[arg(long, env = "GATEHOUSE_REDIS_PREFIX", default_value = gatehouse_store::shared::RedisSettings::DEFAULT_PREFIX, value_parser = parse_redis_prefix)]
    pub redis_prefix: String,
}

impl RedisArgs {
    /// The settings, when Redis is configured.
    pub fn settings(&self) -> Option<gatehouse_store::shared::RedisSettings> {
        self.redis_url
            .as_ref()
            .map(|url| gatehouse_store::shared::RedisSettings {
                url: url.clone(),
                prefix: self.redis_prefix.clone(),
            })
    }
}

/// How the delivery workers of a process run.
#[derive(Debug, Clone, Args)]
pub struct WorkerTuning {
    /// Sends in flight at once in this process.
    #[arg(long, env = "GATEHOUSE_WORKER_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub worker_concurrency: u32,
    /// Seconds a queued delivery may sit untouched before the periodic job pushes it again.
    #[arg(long, env = "GATEHOUSE_REQUEUE_AFTER_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub requeue_after_seconds: u32,
    /// Emails sent per second at most, by all worker processes together (with Redis); 0: no limit.
    #[arg(long, env = "GATEHOUSE_SEND_RATE_EMAIL", default_value_t = 14, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub send_rate_email: u32,
    /// A practice's codes per 10 s that go to the priority lane; the rest of a burst waits
    /// in the bulk lane, so it cannot hold back other practices' codes. 0: no lanes.
    #[arg(long, env = "GATEHOUSE_FAIR_BURST", default_value_t = 10)]
    pub fair_burst: u32,
    /// SMS sent per second at most, by all worker processes together (with Redis); 0: no limit.
    #[arg(long, env = "GATEHOUSE_SEND_RATE_SMS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub send_rate_sms: u32,
}

/// `gatehouse worker`.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub tuning: WorkerTuning,
    /// Allowed SubscribeURL prefixes for confirming SNS subscriptions (the webhook's
    /// certificate URL allow-list); default: https://sns.<AWS_REGION>.amazonaws.com/
    #[arg(long, env = "GATEHOUSE_SNS_CERT_URL_PREFIXES", value_delimiter = ',', value_parser = parse_sns_prefix)]
    pub sns_cert_url_prefixes: Vec<gatehouse_api::sns::CertUrlPrefix>,
    /// Where this worker serves GET /healthz and GET /metrics (Prometheus text); unset:
    /// no HTTP at all.
    #[arg(long, env = "GATEHOUSE_WORKER_LISTEN", value_parser = parse_listen)]
    pub listen: Option<SocketAddr>,
    /// Do not apply migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
}

/// `gatehouse serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address and port to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080", value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// The origin people and EHRs reach (pages, cookies, CSRF checks, later the OIDC
    /// issuer), such as https://signin.vendor.example; default: http://localhost:<port>.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL", value_parser = parse_public_url)]
    pub public_url: Option<url::Url>,
    /// Proxies (CIDRs, comma-separated) whose X-Forwarded-For is believed.
    #[arg(long, env = "GATEHOUSE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_proxy)]
    pub trusted_proxies: Vec<IpNet>,
    /// Failed sign-ins per client IP per minute before the address is refused; 0 disables.
    #[arg(long, env = "GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE", default_value = "30", value_parser = parse_rate)]
    pub login_rate_per_ip_per_minute: u32,
    /// Minutes without a session check after which a session ends.
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE_MINUTES", default_value = "30", value_parser = parse_idle)]
    pub session_idle_minutes: u32,
    /// Hours after sign-in at which a session ends regardless of activity.
    #[arg(long, env = "GATEHOUSE_SESSION_ABSOLUTE_HOURS", default_value = "12", value_parser = parse_absolute)]
    pub session_absolute_hours: u32,

    /// Allowed SigningCertURL prefixes of SNS webhook messages (scheme, host and path);
    /// default: https://sns.<AWS_REGION>.amazonaws.com/
    #[arg(long, env = "GATEHOUSE_SNS_CERT_URL_PREFIXES", value_delimiter = ',', value_parser = parse_sns_prefix)]
    pub sns_cert_url_prefixes: Vec<gatehouse_api::sns::CertUrlPrefix>,
    /// The SNS topics (ARNs, comma-separated) whose messages the webhook believes: the
    /// deployment's SES-events and inbound-SMS topics. Unset: the webhook accepts nothing
    #[arg(long, env = "GATEHOUSE_SNS_TOPIC_ARNS", value_delimiter = ',', value_parser = parse_sns_topic)]
    pub sns_topic_arns: Vec<gatehouse_api::sns::TopicArn>,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub tuning: WorkerTuning,
    /// Run no delivery workers in this process: with GATEHOUSE_REDIS_URL, `gatehouse worker`
    /// processes take the jobs; without it, codes stay queued until a worker runs.
    #[arg(long)]
    pub no_workers: bool,
    /// Seed the demo practice and print its credentials.
    #[arg(long)]
    pub demo: bool,
    /// Do not apply migrations at start.
    #[arg(long)]
    pub no_migrate: bool,
}

/// `gatehouse bootstrap`.
#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Username of the first support_admin.
    #[arg(long, env = "GATEHOUSE_BOOTSTRAP_USERNAME")]
    pub username: String,
    /// Email of the first support_admin.
    #[arg(long, env = "GATEHOUSE_BOOTSTRAP_EMAIL")]
    pub email: String,
    /// Password of the first support_admin (prefer the environment variable to keep it out of shell history).
    #[arg(long, env = "GATEHOUSE_BOOTSTRAP_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Do not apply migrations first.
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Args)]
pub struct ApproveOperatorArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Username of the waiting operator account.
    #[arg(long)]
    pub username: String,
    /// Do not apply migrations first.
    #[arg(long)]
    pub no_migrate: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rotation_spans() {
        assert_eq!(parse_span("24h"), Ok(chrono::Duration::hours(24)));
        assert_eq!(parse_span("0"), Ok(chrono::Duration::zero()));
        assert_eq!(parse_span("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_span("2d"), Ok(chrono::Duration::days(2)));
        assert!(parse_span("soon").is_err());
        assert!(parse_span("-1h").is_err());
        assert!(parse_span("h").is_err());
    }

    #[test]
    fn bad_values_name_their_variable() {
        assert!(
            parse_listen("nope")
                .unwrap_err()
                .contains("GATEHOUSE_LISTEN")
        );
        assert!(
            parse_database_url("mysql://x")
                .unwrap_err()
                .contains("GATEHOUSE_DATABASE_URL")
        );
        assert!(
            parse_company("Not Valid!")
                .unwrap_err()
                .contains("GATEHOUSE_OPERATOR_COMPANY")
        );
        assert!(
            parse_proxy("10.0.0.0/99")
                .unwrap_err()
                .contains("GATEHOUSE_TRUSTED_PROXIES")
        );
        assert!(
            parse_rate("-1")
                .unwrap_err()
                .contains("GATEHOUSE_LOGIN_RATE_PER_IP_PER_MINUTE")
        );
        assert!(
            parse_idle("0")
                .unwrap_err()
                .contains("GATEHOUSE_SESSION_IDLE_MINUTES")
        );
        assert!(
            parse_delivery("ses")
                .unwrap_err()
                .contains("GATEHOUSE_DELIVERY")
        );
        assert_eq!(parse_delivery("aws"), Ok(Delivery::Aws));
        assert!(
            parse_outbox_path(" ")
                .unwrap_err()
                .contains("GATEHOUSE_OUTBOX_PATH")
        );
        assert_eq!(
            parse_proxy("10.1.2.3").map(|n| n.to_string()),
            Ok("10.1.2.3/32".into())
        );
    }

    #[test]
    fn aws_settings_are_checked_and_name_their_variable() {
        assert_eq!(
            parse_ses_from(" no-reply@example.com "),
            Ok("no-reply@example.com".into())
        );
        assert_eq!(
            parse_ses_from("Demo Clinic <no-reply@example.com>"),
            Ok("Demo Clinic <no-reply@example.com>".into())
        );
        for bad in [
            "",
            "nobody",
            "<no-reply@example.com>",
            "Clinic <nobody>",
            "Clinic\r\nBcc: x@y.com <no-reply@example.com>",
        ] {
            assert!(
                parse_ses_from(bad)
                    .unwrap_err()
                    .contains("GATEHOUSE_SES_FROM"),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_configuration_set("gatehouse-events"),
            Ok("gatehouse-events".into())
        );
        assert!(
            parse_configuration_set("no spaces")
                .unwrap_err()
                .contains("GATEHOUSE_SES_CONFIGURATION_SET")
        );
        assert_eq!(parse_sender_id("DemoClinic"), Ok("DemoClinic".into()));
        for bad in ["", "123456", "TooLongSender", "Demo Clinic"] {
            assert!(
                parse_sender_id(bad)
                    .unwrap_err()
                    .contains("GATEHOUSE_SMS_SENDER_ID"),
                "{bad:?}"
            );
        }
        assert_eq!(
            parse_origination_number("+1 (202) 555-0100").map(|n| n.to_string()),
            Ok("+12025550100".into())
        );
        assert!(
            parse_origination_number("call me")
                .unwrap_err()
                .contains("GATEHOUSE_SMS_ORIGINATION_NUMBER")
        );
    }

    #[test]
    fn d3_short_codes_and_toll_free_numbers_are_sender_numbers() {
        for (value, shown) in [
            ("50120", "50120"),
            ("501-20", "501-20"),
            ("+18005550100", "+18005550100"),
        ] {
            let cli = Cli::try_parse_from([
                "gatehouse",
                "serve",
                "--sms-opt-in-number",
                value,
                "--sms-origination-number",
                value,
            ])
            .unwrap_or_else(|e| panic!("{value}: {e}"));
            let Command::Serve(args) = cli.command else {
                panic!("serve")
            };
            let numbers = args.delivery.sms_numbers();
            assert_eq!(numbers.opt_in_number().unwrap().to_string(), shown);
            assert_eq!(
                numbers.origination.as_ref().unwrap().to_string(),
                shown,
                "{value}"
            );
        }
        let cli =
            Cli::try_parse_from(["gatehouse", "worker", "--sms-opt-in-number", "501-20"]).unwrap();
        let Command::Worker(args) = cli.command else {
            panic!("worker")
        };
        assert_eq!(
            args.delivery
                .sms_numbers()
                .opt_in_number()
                .unwrap()
                .aws_value(),
            "50120"
        );
        for bad in ["5012", "5012345", "50-1-20", "call me"] {
            let err = Cli::try_parse_from(["gatehouse", "serve", "--sms-opt-in-number", bad])
                .unwrap_err()
                .to_string();
            assert!(err.contains("GATEHOUSE_SMS_OPT_IN_NUMBER"), "{bad}: {err}");
        }
    }

    #[test]
    fn d6_sns_topics_are_listed_arns_and_name_their_variable() {
        let cli = Cli::try_parse_from(["gatehouse", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert!(args.sns_topic_arns.is_empty(), "unset: none believed");
        let cli = Cli::try_parse_from([
            "gatehouse",
            "serve",
            "--sns-topic-arns",
            "arn:aws:sns:us-east-1:123456789012:events,arn:aws:sns:us-east-1:123456789012:sms",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let arns: Vec<&str> = args.sns_topic_arns.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            arns,
            [
                "arn:aws:sns:us-east-1:123456789012:events",
                "arn:aws:sns:us-east-1:123456789012:sms"
            ]
        );
        assert!(
            parse_sns_topic("gatehouse-events")
                .unwrap_err()
                .contains("GATEHOUSE_SNS_TOPIC_ARNS")
        );
    }

    #[test]
    fn d3_the_opt_out_sync_runs_every_ten_minutes_unless_configured() {
        let cli = Cli::try_parse_from(["gatehouse", "serve"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(
            args.delivery.opt_out_sync(),
            std::time::Duration::from_secs(600)
        );
        let cli =
            Cli::try_parse_from(["gatehouse", "serve", "--sms-opt-out-sync-minutes", "2"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(
            args.delivery.opt_out_sync(),
            std::time::Duration::from_secs(120)
        );
        assert!(
            Cli::try_parse_from(["gatehouse", "serve", "--sms-opt-out-sync-minutes", "0"]).is_err()
        );
    }

    #[test]
    fn aws_delivery_without_a_sender_is_refused_naming_the_variable() {
        let cli = Cli::try_parse_from(["gatehouse", "serve", "--delivery", "aws"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        assert_eq!(args.delivery.kind, Delivery::Aws);
        let err = args.delivery.aws_settings().unwrap_err();
        assert!(err.contains("GATEHOUSE_SES_FROM"), "{err}");

        let cli = Cli::try_parse_from([
            "gatehouse",
            "serve",
            "--delivery",
            "aws",
            "--ses-from",
            "no-reply@example.com",
            "--ses-configuration-set",
            "events",
            "--sms-sender-id",
            "Demo",
            "--sms-origination-number",
            "+12025550100",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let settings = args.delivery.aws_settings().unwrap();
        assert_eq!(settings.ses.from, "no-reply@example.com");
        assert_eq!(settings.ses.configuration_set.as_deref(), Some("events"));
        assert_eq!(settings.sms.sender_id.as_deref(), Some("Demo"));
        assert_eq!(
            settings.sms.origination_number.map(|n| n.to_string()),
            Some("+12025550100".into())
        );
    }

    fn common(url: &str, key: Option<&str>, file: Option<PathBuf>) -> CommonArgs {
        CommonArgs {
            database_url: url.into(),
            operator_company: CompanyId::parse("operator").unwrap(),
            log_format: None,
            secret_key: key.map(|k| KeyText(k.into())),
            secret_key_file: file,
            secret_key_previous: Vec::new(),
        }
    }

    #[test]
    fn embedded_mode_creates_a_private_key_file_once_and_reuses_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.key");
        let args = common("sqlite://x.db", None, Some(path.clone()));
        let first = args.keyring().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = args.keyring().unwrap();
        assert_eq!(first.current().id(), again.current().id());
    }

    #[test]
    fn production_requires_a_key_and_bad_keys_name_their_variable() {
        let err = common("postgres://db/x", None, None).keyring().unwrap_err();
        assert!(err.contains("GATEHOUSE_SECRET_KEY"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let missing = common("postgres://db/x", None, Some(dir.path().join("none.key")));
        assert!(
            missing
                .keyring()
                .unwrap_err()
                .contains("GATEHOUSE_SECRET_KEY_FILE")
        );
        assert!(
            parse_key("short")
                .unwrap_err()
                .contains("GATEHOUSE_SECRET_KEY")
        );
        let k = SecretKey::generate(&mut rand::rngs::OsRng).to_base64();
        let ring = common("postgres://db/x", Some(&k), None).keyring().unwrap();
        assert_eq!(
            ring.current().id(),
            SecretKey::parse_base64(&k).unwrap().id()
        );
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
