//! Gatehouse persistence: entities, tenant-scoped repositories, the session cache and
//! session checks, rate-limit counters, the job producer and the Argon2id pool. The use
//! cases that decide (sign-in, MFA, administration, support, escalations) are
//! gatehouse-app's; what is left here beyond storing is the check of a session token (with
//! its cache) and the delivery workers' own persistence.
//!
//! Tenant-scoped data is reached only through [`scope::TenantScope`], which carries the
//! tenant id into every query, so no repository call can forget the filter (T1).

pub mod audit;
mod cache;
pub mod deliveries;
pub mod delivery_attempts;
pub mod delivery_log;
mod entities;
pub mod error;
pub mod escalations;
pub mod groups;
pub mod hashing;
pub mod inbound;
pub mod mfa;
pub mod oidc;
pub mod optouts;
pub mod queue;
pub mod ratelimit;
pub mod records;
pub mod scale;
pub mod scope;
pub mod sessions;
pub mod shared;
pub mod signin;
mod sql;
pub mod support;
pub mod telemetry;
pub mod tenants;
pub mod tries;
pub mod users;

use gatehouse_domain::clock::Clock;
use gatehouse_domain::crypto::Keyring;
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::password::HashParams;
use gatehouse_domain::sender::SmsNumbers;
use gatehouse_domain::session::SessionPolicy;
use gatehouse_migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::SecretString;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::StoreError;
pub use records::{Group, Page, Principal, Tenant, TenantStatus, User};
pub use sea_orm::{DbBackend, DbErr};

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How the store is set up.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub database_url: String,
    pub hash_params: HashParams,
    /// Concurrent Argon2 computations; defaults to the number of cores.
    pub hash_workers: usize,
    pub session_policy: SessionPolicy,
    pub operator_company: CompanyId,
    /// Sign-in attempts per client IP per minute; 0 disables the limit.
    pub login_rate_per_ip_per_minute: u32,
    pub max_db_connections: u32,
    /// Seals secrets at rest and in job payloads; keys code hashes.
    pub keyring: Arc<Keyring>,
    /// The deployment's own SMS numbers (D3): the opt-in number is named in
    /// `phone_opted_out`, and only an inbound SMS to one of them changes an opt-out.
    pub sms_numbers: SmsNumbers,
    /// Redis shared by several processes (GATEHOUSE_REDIS_URL); `None`: all in-process.
    pub redis: Option<shared::RedisSettings>,
}

impl StoreConfig {
    /// Defaults for a database URL and key.
    pub fn new(
        database_url: impl Into<String>,
        operator_company: CompanyId,
        keyring: Arc<Keyring>,
    ) -> Self {
        Self {
            database_url: database_url.into(),
            hash_params: HashParams::OWASP,
            hash_workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            session_policy: SessionPolicy::default(),
            operator_company,
            login_rate_per_ip_per_minute: 30,
            max_db_connections: 16,
            keyring,
            sms_numbers: SmsNumbers::default(),
            redis: None,
        }
    }
}

/// Who is calling and from where, for audit events and rate limits.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    pub(crate) fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }

    /// The client's user agent, cut to what the audit log and device labels keep.
    pub fn user_agent_trimmed(&self) -> Option<String> {
        // Bound what an attacker-controlled header can put into the audit log.
        self.user_agent
            .as_ref()
            .map(|ua| ua.chars().take(512).collect())
    }
}

pub(crate) struct Inner {
    pub(crate) db: DatabaseConnection,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: StoreConfig,
    pub(crate) hasher: hashing::PasswordPool,
    pub(crate) cache: cache::SessionCache,
    pub(crate) login_limiter: ratelimit::LoginLimiter,
    /// Verified when the user does not exist, so that an unknown user costs the same time.
    pub(crate) dummy_hash: String,
    /// Where send jobs go once attached (see [`queue`]).
    pub(crate) queue: std::sync::OnceLock<Arc<dyn queue::JobQueue>>,
    /// The shared Redis, when configured.
    pub(crate) redis: Option<redis::aio::ConnectionManager>,
    /// On SQLite, the turn of this process's write transactions (see
    /// [`Inner::begin_write`]); `None` on PostgreSQL.
    pub(crate) writer: Option<Arc<tokio::sync::Mutex<()>>>,
    /// Wakes the background chainer of audit events kept aside (see [`audit`]).
    pub(crate) chainer: Arc<tokio::sync::Notify>,
    /// On SQLite, where those events wait ([`audit::SideInbox`]); `None` on PostgreSQL.
    pub(crate) side_inbox: Option<audit::SideInbox>,
}

/// The advisory lock key migrations take on PostgreSQL ("gatehous" in ASCII).
const MIGRATION_LOCK: i64 = 0x6761_7465_686f_7573;

/// The persistence layer: repositories, caches and counters over one database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.inner.db.get_database_backend())
            .finish()
    }
}

/// A transaction that writes, from [`Inner::begin_write`]. It dereferences to the
/// transaction; on SQLite it also holds this process's writer turn until it commits or
/// is dropped.
pub struct WriteTxn {
    // Declared first so that a dropped transaction rolls back before the turn passes on.
    txn: sea_orm::DatabaseTransaction,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = sea_orm::DatabaseTransaction;

    fn deref(&self) -> &Self::Target {
        &self.txn
    }
}

/// Statements run in the transaction, so a `WriteTxn` goes wherever a connection does.
#[async_trait::async_trait]
impl sea_orm::ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> std::result::Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(
        &self,
        sql: &str,
    ) -> std::result::Result<sea_orm::ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> std::result::Result<Option<sea_orm::QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(
        &self,
        stmt: sea_orm::Statement,
    ) -> std::result::Result<Vec<sea_orm::QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

impl WriteTxn {
    /// Commits, then hands the writer turn to the next in line.
    pub async fn commit(self) -> Result<()> {
        let WriteTxn { txn, _turn } = self;
        txn.commit().await?;
        Ok(())
    }
}

impl Inner {
    /// On SQLite, this process's writer turn (see [`Inner::begin_write`]), for a write of
    /// one statement outside a transaction: held until the statement has run, so that it
    /// queues with the transactions instead of meeting them in SQLite's busy wait, which
    /// sleeps 1, 2, 5, ... 100 ms and makes whoever holds the turn wait too. Every such
    /// write of the store takes it. Never while the same task holds a [`WriteTxn`] (it
    /// would wait for itself). `None` on PostgreSQL.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match &self.writer {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        }
    }

    /// Starts a transaction that writes.
    ///
    /// On SQLite it takes the write lock at `BEGIN` (`IMMEDIATE`): a deferred transaction
    /// that reads and then writes after another writer committed fails at once with
    /// SQLITE_BUSY ("database is locked"), whatever the timeout, which under load lost the
    /// record of codes already sent. Before that, it waits for this process's writer turn,
    /// first come first served: SQLite's own wait for a busy database polls after 1, 2, 5,
    /// ... 50, 100 ms and lets newcomers overtake, which under a steady stream of writes
    /// gave some writers 360 to 450 ms (every write at the clinic morning's p99).
    ///
    /// On PostgreSQL it is a plain `BEGIN`.
    pub(crate) async fn begin_write(&self) -> std::result::Result<WriteTxn, DbErr> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait};
        let turn = self.write_turn().await;
        let txn = self
            .db
            .begin_with_options(TransactionOptions {
                sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                ..TransactionOptions::default()
            })
            .await?;
        Ok(WriteTxn { txn, _turn: turn })
    }
}

/// How often a SQLite database's write-ahead log is copied back into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Pages of write-ahead log (4 KiB each) past which the checkpointer empties it while
/// this process's writers wait: 32 MiB.
const WAL_PAGES_LIMIT: i64 = if cfg!(test) { 512 } else { 8192 };

/// On SQLite, checkpoints the write-ahead log in the background, every
/// [`CHECKPOINT_EVERY`], until the store is gone.
///
/// By default SQLite checkpoints inside the commit that grows the log past 1,000 pages:
/// that commit copies the pages back and syncs the database file before it returns, and
/// this process's writer turn (see [`Inner::begin_write`]) passes on only then, so every
/// write queued behind it waited for the disk. Connections here turn that off
/// (`wal_autocheckpoint = 0`) and this task does the same work `PASSIVE`ly beside the
/// writers: it takes no writer turn and waits for no lock.
///
/// A passive checkpoint never empties a log that writers keep appending to (SQLite starts
/// it over only when a writer finds every page of it copied back), so under steady writes
/// it only grew: `seed-scale` left 2.5 GB of it, which the next process's start read
/// through for a second. Past [`WAL_PAGES_LIMIT`] the task takes the writer turn and
/// checkpoints with `TRUNCATE`, which copies back what the passive one did not get to yet
/// and empties the file.
fn spawn_checkpointer(inner: &Arc<Inner>) {
    let store = Arc::downgrade(inner);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CHECKPOINT_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let Some(inner) = store.upgrade() else { break };
            if let Err(e) = checkpoint(&inner).await {
                tracing::warn!(error = %e, "the SQLite write-ahead log could not be checkpointed");
            }
        }
    });
}

/// One pass of [`spawn_checkpointer`].
async fn checkpoint(inner: &Inner) -> std::result::Result<(), DbErr> {
    use sea_orm::ConnectionTrait;
    let passive = inner
        .db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA wal_checkpoint(PASSIVE)",
        ))
        .await?;
    // (busy, pages in the log, pages copied back)
    let pages = match passive {
        Some(row) => row.try_get_by_index::<i64>(1)?,
        None => 0,
    };
    if pages > WAL_PAGES_LIMIT {
        let _turn = inner.write_turn().await;
        let started = std::time::Instant::now();
        inner
            .db
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await?;
        tracing::info!(
            pages,
            writers_waited_ms = started.elapsed().as_millis() as u64,
            "the SQLite write-ahead log was emptied"
        );
    }
    Ok(())
}

impl Store {
    /// Connects to the database (SQLite or PostgreSQL by URL).
    pub async fn connect(config: StoreConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        let mut opts = ConnectOptions::new(config.database_url.clone());
        opts.max_connections(config.max_db_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                // WAL lets readers run beside the single writer; the busy timeout makes
                // writers queue instead of failing.
                // No checkpoint inside a commit: see `spawn_checkpointer`.
                o.journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(15))
                    .foreign_keys(true)
                    .pragma("wal_autocheckpoint", "0")
            });
        let db = Database::connect(opts).await?;
        let hasher = hashing::PasswordPool::new(config.hash_params, config.hash_workers)?;
        let dummy_hash = hasher
            .hash(SecretString::from("gatehouse-dummy-password".to_owned()))
            .await?;
        let mut cache = cache::SessionCache::new();
        let mut login_limiter = ratelimit::LoginLimiter::new(config.login_rate_per_ip_per_minute);
        let redis = match &config.redis {
            Some(settings) => {
                let conn = shared::connect(settings).await.map_err(|e| {
                    StoreError::Unavailable(format!(
                        "GATEHOUSE_REDIS_URL ({}): {e}",
                        shared::redacted(&settings.url)
                    ))
                })?;
                let client = redis::Client::open(settings.url.as_str())
                    .map_err(|e| StoreError::Unavailable(format!("GATEHOUSE_REDIS_URL: {e}")))?;
                cache = cache.shared(client, conn.clone(), settings);
                login_limiter = login_limiter.with_redis(conn.clone(), settings.clone());
                tracing::info!(redis = %shared::redacted(&settings.url), prefix = %settings.prefix, "sign-in limits and session invalidations are shared through Redis");
                Some(conn)
            }
            None => None,
        };
        let sqlite = db.get_database_backend() == DbBackend::Sqlite;
        let writer = sqlite.then(|| Arc::new(tokio::sync::Mutex::new(())));
        let side_inbox = match sqlite {
            true => Some(audit::SideInbox::open(&config.database_url).await?),
            false => None,
        };
        let inner = Inner {
            writer,
            hasher,
            cache,
            login_limiter,
            redis,
            db,
            clock,
            config,
            dummy_hash,
            queue: std::sync::OnceLock::new(),
            chainer: Arc::new(tokio::sync::Notify::new()),
            side_inbox,
        };
        let inner = Arc::new(inner);
        audit::spawn_chainer(&inner);
        if inner.writer.is_some() {
            spawn_checkpointer(&inner);
        }
        Ok(Self { inner })
    }

    /// Applies pending migrations. On PostgreSQL, processes starting together (several
    /// API tasks of a new deployment) take turns: a transaction holds an advisory lock
    /// while the migrations run on the pool's other connections, and the next process
    /// finds them applied. (sea-orm-migration itself does not lock.) On SQLite the
    /// database's write lock serialises them.
    pub async fn migrate(&self) -> Result<()> {
        use sea_orm::{ConnectionTrait, TransactionTrait};
        let db = &self.inner.db;
        let turn = if db.get_database_backend() == DbBackend::Postgres {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
                .await?;
            Some(txn)
        } else {
            None
        };
        Migrator::up(db, None).await?;
        if let Some(txn) = turn {
            txn.commit().await?;
        }
        Ok(())
    }

    /// Checks the database answers.
    pub async fn ping(&self) -> Result<()> {
        self.inner.db.ping().await?;
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> DbBackend {
        self.inner.db.get_database_backend()
    }

    /// Starts a transaction that writes (see [`Inner::begin_write`]): what a use case
    /// changes, with its audit events, commits together or not at all.
    pub async fn begin_write(&self) -> Result<WriteTxn> {
        Ok(self.inner.begin_write().await?)
    }

    /// The injected clock.
    pub fn clock(&self) -> &dyn Clock {
        self.inner.clock.as_ref()
    }

    /// The shared Redis connection (reconnecting by itself), when configured.
    pub fn redis(&self) -> Option<&redis::aio::ConnectionManager> {
        self.inner.redis.as_ref()
    }

    /// The configuration the store runs with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }
}

/// A store on a SQLite file at `path` (created), with a new key and the system clock,
/// not yet migrated: what the store's own SQLite tests start from.
#[cfg(test)]
pub(crate) async fn sqlite_store_for_tests(path: &std::path::Path) -> Store {
    let keyring = Arc::new(Keyring::new(gatehouse_domain::crypto::SecretKey::generate(
        &mut rand::rngs::OsRng,
    )));
    let config = StoreConfig::new(
        format!("sqlite://{}?mode=rwc", path.display()),
        CompanyId::parse("operator").unwrap_or_else(|e| panic!("operator company: {e}")),
        keyring,
    );
    Store::connect(config, Arc::new(gatehouse_domain::clock::SystemClock))
        .await
        .unwrap_or_else(|e| panic!("connect {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use sea_orm::{ConnectionTrait, Statement};

    /// SQLite: no commit copies the write-ahead log back into the database (so no writer's
    /// turn waits for the disk), the background task does it by itself, and steady writes
    /// do not grow the log without end.
    #[tokio::test]
    async fn p1_sqlite_checkpoints_beside_the_writers_and_keeps_the_log_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gh.db");
        let store = sqlite_store_for_tests(&path).await;
        let auto = store
            .inner
            .db
            .query_one_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA wal_autocheckpoint",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(auto.try_get_by_index::<i64>(0).unwrap(), 0);

        // The schema's pages go to the log; only a checkpoint brings them to the file.
        let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let empty = size();
        store.migrate().await.unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() <= empty {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing was checkpointed into {} ({} bytes)",
                path.display(),
                size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Under steady writes the log does not grow without end: 40 MB written in 400
        // commits one after another, the log is back under its limit moments later.
        let wal = dir.path().join("gh.db-wal");
        let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        store
            .inner
            .db
            .execute_unprepared("CREATE TABLE scratch (b BLOB)")
            .await
            .unwrap();
        let mut largest = 0;
        for _ in 0..400 {
            let txn = store.inner.begin_write().await.unwrap();
            txn.execute_unprepared("INSERT INTO scratch VALUES (randomblob(100000))")
                .await
                .unwrap();
            txn.commit().await.unwrap();
            largest = largest.max(wal_size());
        }
        let limit = WAL_PAGES_LIMIT as u64 * 4096 + 65_536;
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while wal_size() > limit {
            assert!(
                std::time::Instant::now() < deadline,
                "the write-ahead log stays at {} bytes (largest {largest})",
                wal_size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
