//! The audit log repository: appends to each tenant's hash chain, lists and verifies it.
//!
//! Appends run inside a transaction that first writes the tenant's row. That takes the
//! tenant's row lock on PostgreSQL and the write lock on SQLite, so concurrent writers
//! queue instead of both reading the same chain head: the chain cannot fork. The unique
//! index on (tenant_id, seq) backs this up. The head (last seq and hash) is kept on the
//! tenant row, so removing the newest events is detected too.
//!
//! A writer that records events in many practices at once (the support search) keeps them
//! aside instead ([`keep_aside`]: an inbox table, no head locked; on SQLite in a file of
//! its own, [`SideInbox`]); a background task and every read of a log chain them
//! ([`chain_waiting`]), each with the id and time it was kept with. An event may
//! therefore follow, in its chain, one that happened a moment
//! after it: `seq` is the order of the chain, `at` the time of the event.

use crate::entities::{audit_events, audit_inbox};
use crate::error::StoreError;
use crate::records::{Page, Principal, Tenant, User};
use crate::scope::TenantScope;
use crate::sql::stmt;
use crate::{Inner, RequestMeta, Result};
use chrono::{DateTime, Utc};
use gatehouse_domain::audit::{
    Actor, ActorKind, ChainVerifier, ChainedEvent, Details, NewEvent, Target,
};
use gatehouse_domain::ids::TenantId;
use gatehouse_domain::ids::UserId;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, SqliteTransactionMode, Statement, TransactionOptions,
    TransactionTrait, Value,
};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Filters of `GET .../audit-events`.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub action: Option<String>,
    pub actor_id: Option<Uuid>,
    pub target_id: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

/// The result of walking a tenant's chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainReport {
    pub ok: bool,
    pub events: u64,
    pub first_bad_seq: Option<i64>,
}

/// Builds an event from the parts every caller has; its action is its details'.
pub fn event(
    actor: Actor,
    target: Option<Target>,
    meta: &RequestMeta,
    details: Details,
) -> NewEvent {
    NewEvent {
        action: details.action(),
        actor,
        target,
        ip: meta.ip_string(),
        user_agent: meta.user_agent_trimmed(),
        details: details.to_value(),
    }
}

/// The actor of an audit event for an authenticated caller.
pub fn actor_of(p: &Principal) -> Actor {
    Actor {
        kind: if p.user.role.is_support() {
            ActorKind::Support
        } else {
            ActorKind::User
        },
        id: Some(p.user.id.0),
        username: Some(p.user.username.clone()),
    }
}

/// The audit target for a user.
pub fn user_target(id: UserId, username: &str) -> Target {
    Target {
        kind: "user",
        id: id.to_string(),
        label: Some(username.to_owned()),
    }
}

/// The audit target for a practice.
pub fn tenant_target(t: &Tenant) -> Target {
    Target {
        kind: "tenant",
        id: t.id.to_string(),
        label: Some(t.company.to_string()),
    }
}

/// The actor of an event a user causes by signing in (no session yet).
pub fn actor_user(m: &User) -> Actor {
    Actor {
        kind: ActorKind::User,
        id: Some(m.id.0),
        username: Some(m.username.clone()),
    }
}

fn to_chained(m: audit_events::Model) -> Result<ChainedEvent> {
    Ok(ChainedEvent {
        details: serde_json::from_str(&m.details)
            .map_err(|_| StoreError::Corrupt(format!("audit event {} details", m.id)))?,
        id: m.id,
        tenant_id: m.tenant_id,
        seq: m.seq,
        at: m.at,
        action: m.action,
        actor_kind: m.actor_kind,
        actor_id: m.actor_id,
        actor_username: m.actor_username,
        target_kind: m.target_kind,
        target_id: m.target_id,
        target_label: m.target_label,
        ip: m.ip,
        user_agent: m.user_agent,
        prev_hash: m.prev_hash,
        hash: m.hash,
    })
}

fn row(e: ChainedEvent) -> audit_events::ActiveModel {
    audit_events::ActiveModel {
        id: Set(e.id),
        tenant_id: Set(e.tenant_id),
        seq: Set(e.seq),
        at: Set(e.at),
        action: Set(e.action),
        actor_id: Set(e.actor_id),
        actor_kind: Set(e.actor_kind),
        actor_username: Set(e.actor_username),
        target_kind: Set(e.target_kind),
        target_id: Set(e.target_id),
        target_label: Set(e.target_label),
        ip: Set(e.ip),
        user_agent: Set(e.user_agent),
        details: Set(e.details.to_string()),
        prev_hash: Set(e.prev_hash),
        hash: Set(e.hash),
    }
}

/// An event kept aside, as the inbox holds it (not yet linked: no seq, no hashes).
fn waiting_row(e: ChainedEvent) -> audit_inbox::ActiveModel {
    audit_inbox::ActiveModel {
        n: NotSet,
        id: Set(e.id),
        tenant_id: Set(e.tenant_id),
        at: Set(e.at),
        action: Set(e.action),
        actor_id: Set(e.actor_id),
        actor_kind: Set(e.actor_kind),
        actor_username: Set(e.actor_username),
        target_kind: Set(e.target_kind),
        target_id: Set(e.target_id),
        target_label: Set(e.target_label),
        ip: Set(e.ip),
        user_agent: Set(e.user_agent),
        details: Set(e.details.to_string()),
    }
}

/// An event of the inbox, ready to be linked ([`ChainedEvent::link`]).
fn waiting_event(m: audit_inbox::Model) -> Result<ChainedEvent> {
    Ok(ChainedEvent {
        details: serde_json::from_str(&m.details)
            .map_err(|_| StoreError::Corrupt(format!("waiting audit event {} details", m.id)))?,
        id: m.id,
        tenant_id: m.tenant_id,
        seq: 0,
        at: m.at,
        action: m.action,
        actor_kind: m.actor_kind,
        actor_id: m.actor_id,
        actor_username: m.actor_username,
        target_kind: m.target_kind,
        target_id: m.target_id,
        target_label: m.target_label,
        ip: m.ip,
        user_agent: m.user_agent,
        prev_hash: String::new(),
        hash: String::new(),
    })
}

/// Rows per INSERT of [`append_many_in`]: the support search's default page of 50 users,
/// which audits a row per practice, fits in one statement with room to spare (128 rows
/// are 2,048 parameters: PostgreSQL takes 65,535, SQLite 32,766). Under sqlx 0.9.0, which
/// left Nagle's algorithm on, a statement of more than about 20 KB waited out
/// PostgreSQL's 40 ms delayed ACK, so these inserts were cut into 16-row statements;
/// 0.9.1 sets `TCP_NODELAY` again.
const INSERT_ROWS: usize = 128;

/// Appends events of many tenants inside the caller's transaction, in a fixed number of
/// statements whatever their count: the tenants' heads are read and locked together, the
/// events inserted together, the heads moved together (on PostgreSQL in the same
/// statement as the last insert). Each tenant's events keep their order. On PostgreSQL
/// the tenant rows are locked in id order, so that two processes appending for
/// overlapping practices queue instead of deadlocking; on SQLite the caller's write
/// transaction already excludes every other writer.
pub(crate) async fn append_many_in(
    txn: &DatabaseTransaction,
    now: DateTime<Utc>,
    events: Vec<(TenantId, NewEvent)>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tenants: Vec<Uuid> = events.iter().map(|(t, _)| t.0).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let mut head = lock_heads(txn, &tenants).await?;
    let mut rows = Vec::with_capacity(events.len());
    for (tenant, event) in events {
        let (seq, hash) = head
            .get_mut(&tenant.0)
            .ok_or(gatehouse_domain::Error::NotFound)?;
        let e = ChainedEvent::next(tenant.0, *seq + 1, now, hash, event);
        *seq = e.seq;
        hash.clone_from(&e.hash);
        rows.push(row(e));
    }
    write_linked(txn, &tenants, &head, rows).await
}

/// Reads the chain heads of `tenants` (sorted, distinct) and, on PostgreSQL, locks them
/// against other head writers in that order until the transaction ends. A practice that no longer exists has none.
async fn lock_heads(
    txn: &DatabaseTransaction,
    tenants: &[Uuid],
) -> Result<HashMap<Uuid, (i64, String)>> {
    let backend = txn.get_database_backend();
    let list = (1..=tenants.len())
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ");
    // `NO KEY UPDATE`: what an UPDATE of the head takes (see `AuditLog::append_in`), so
    // head writers queue on each other, while the inbox's inserts, whose foreign key only
    // takes `KEY SHARE` of the tenant row, pass.
    let lock = match backend {
        sea_orm::DbBackend::Postgres => " ORDER BY id FOR NO KEY UPDATE",
        _ => "",
    };
    let heads = txn
        .query_all_raw(stmt(
            backend,
            &format!(
                "SELECT id, audit_head_seq, audit_head_hash FROM tenants WHERE id IN ({list}){lock}"
            ),
            tenants.iter().map(|t| (*t).into()).collect(),
        ))
        .await?;
    let mut head: HashMap<Uuid, (i64, String)> = HashMap::with_capacity(heads.len());
    for h in heads {
        head.insert(
            h.try_get("", "id")?,
            (
                h.try_get("", "audit_head_seq")?,
                h.try_get("", "audit_head_hash")?,
            ),
        );
    }
    Ok(head)
}

/// Inserts events already linked to the heads [`lock_heads`] gave, and moves the heads of
/// `tenants` to where `head` now says.
async fn write_linked(
    txn: &DatabaseTransaction,
    tenants: &[Uuid],
    head: &HashMap<Uuid, (i64, String)>,
    mut rows: Vec<audit_events::ActiveModel>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let backend = txn.get_database_backend();
    let last = rows.split_off(INSERT_ROWS * ((rows.len() - 1) / INSERT_ROWS));
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(INSERT_ROWS));
        audit_events::Entity::insert_many(rows)
            .exec_without_returning(txn)
            .await?;
        rows = rest;
    }
    let moves = |first: usize| -> Result<(String, Vec<Value>)> {
        let mut values: Vec<Value> = Vec::with_capacity(tenants.len() * 3);
        let (mut seqs, mut hashes, mut ids) = (String::new(), String::new(), String::new());
        for t in tenants {
            let (seq, hash) = head.get(t).ok_or(gatehouse_domain::Error::NotFound)?;
            let n = first + values.len();
            seqs.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 2));
            hashes.push_str(&format!(" WHEN ${} THEN ${}", n + 1, n + 3));
            if !ids.is_empty() {
                ids.push_str(", ");
            }
            ids.push_str(&format!("${}", n + 1));
            values.extend([(*t).into(), (*seq).into(), hash.clone().into()]);
        }
        Ok((
            format!(
                "UPDATE tenants SET audit_head_seq = CASE id{seqs} END, \
                 audit_head_hash = CASE id{hashes} END WHERE id IN ({ids})"
            ),
            values,
        ))
    };
    let insert = audit_events::Entity::insert_many(last);
    if backend == DbBackend::Postgres {
        // The last events and the moved heads in one statement (a data-modifying WITH
        // runs exactly once), as `AuditLog::append_in` does for one event.
        let insert = insert.build(backend);
        let mut values = insert.values.map(|v| v.0).unwrap_or_default();
        let (update, more) = moves(values.len())?;
        values.extend(more);
        let sql = format!("WITH appended AS ({}) {update}", insert.sql);
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        return Ok(());
    }
    insert.exec_without_returning(txn).await?;
    let (update, values) = moves(0)?;
    txn.execute_raw(stmt(backend, &update, values)).await?;
    Ok(())
}

/// Keeps events aside for their practices' chains, inside the caller's transaction (or,
/// up to [`INSERT_ROWS`] events, as one statement of its own): one INSERT per
/// [`INSERT_ROWS`] events and no chain head locked, so that writers of many
/// practices at once (the support search) do not queue on each other's heads. Each event
/// keeps the id and time it has now. [`chain_waiting`] gives them their places, moments
/// later in the background ([`Inner::nudge_chainer`]) and before any read of a log.
async fn keep_aside_in<C: ConnectionTrait>(
    conn: &C,
    now: DateTime<Utc>,
    events: Vec<(TenantId, NewEvent)>,
) -> Result<()> {
    let mut rows: Vec<audit_inbox::ActiveModel> = events
        .into_iter()
        .map(|(tenant, event)| waiting_row(ChainedEvent::unlinked(tenant.0, now, event)))
        .collect();
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(INSERT_ROWS));
        audit_inbox::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
        rows = rest;
    }
    Ok(())
}

/// On SQLite, where events kept aside wait: a file of their own beside the database
/// (its name with `-audit-inbox` after it), with its own writer turn. SQLite lets one
/// writer at a time into a file, so in the database itself a search's INSERT queued
/// behind every sign-in's writes (clinic morning, 500,000 users: search p99 64 ms, 18 ms
/// with no audit write at all); here it queues only behind other searches and the
/// chainer's removals.
///
/// No transaction spans the two files, so [`chain_waiting`] writes events into their
/// chains first and removes them from this file after, and skips any it finds already in
/// the log: a chainer that stopped in between, or two chainers at once, leave no event
/// twice and lose none.
pub(crate) struct SideInbox {
    db: DatabaseConnection,
    turn: Arc<tokio::sync::Mutex<()>>,
}

impl SideInbox {
    /// Opens, creating when missing, the side file of the SQLite database at `url`.
    pub(crate) async fn open(url: &str) -> Result<Self> {
        let mut opts = ConnectOptions::new(url.to_owned());
        opts.max_connections(4)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(10))
            .sqlx_logging(false)
            .map_sqlx_sqlite_opts(|o| {
                use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
                let file = format!("{}-audit-inbox", o.get_filename().display());
                o.filename(file)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(15))
            });
        let db = Database::connect(opts).await?;
        gatehouse_migration::create_side_audit_inbox(&db).await?;
        Ok(Self {
            db,
            turn: Arc::new(tokio::sync::Mutex::new(())),
        })
    }
}

/// Keeps events aside for their practices' chains (see [`keep_aside_in`]), where this
/// store keeps them: on PostgreSQL in the database's inbox, up to [`INSERT_ROWS`] events
/// as one statement that is its own transaction (no BEGIN and COMMIT to wait for); on
/// SQLite in the [`SideInbox`]. Then nudges the background chainer.
pub(crate) async fn keep_aside(
    inner: &Inner,
    now: DateTime<Utc>,
    events: Vec<(TenantId, NewEvent)>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let one_statement = events.len() <= INSERT_ROWS;
    match &inner.side_inbox {
        Some(side) => {
            let _turn = side.turn.lock().await;
            if one_statement {
                keep_aside_in(&side.db, now, events).await?;
            } else {
                let txn = side
                    .db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await?;
                keep_aside_in(&txn, now, events).await?;
                txn.commit().await?;
            }
        }
        None if one_statement => keep_aside_in(&inner.db, now, events).await?,
        None => {
            let txn = inner.begin_write().await?;
            keep_aside_in(&txn, now, events).await?;
            txn.commit().await?;
        }
    }
    inner.nudge_chainer();
    Ok(())
}

/// Events chained per transaction by [`chain_waiting`]: the heads of at most this many
/// practices are locked at once.
const CHAIN_BATCH: u64 = 256;

/// Gives the events kept aside by [`keep_aside`] their places in their practices'
/// chains, oldest first, and removes them from the inbox; `only` one practice's, or
/// everyone's. Answers how many it chained. On SQLite it also empties the database's own
/// inbox, where an earlier version kept them.
pub(crate) async fn chain_waiting(inner: &Inner, only: Option<Uuid>) -> Result<u64> {
    let mut chained = chain_from(inner, None, only).await?;
    if let Some(side) = &inner.side_inbox {
        chained += chain_from(inner, Some(side), only).await?;
    }
    Ok(chained)
}

/// [`chain_waiting`] from one inbox: the database's (`side` is `None`) or a [`SideInbox`].
///
/// Each batch locks the heads first and only then reads the inbox. In the database's
/// inbox, the events leave in the same transaction, so two chainers (the background one
/// and a reader's, or those of two processes) never chain an event twice: the second
/// finds the first's events gone once it has the locks. From a side file, they leave
/// after the commit, and the second skips those it finds in the log.
async fn chain_from(inner: &Inner, side: Option<&SideInbox>, only: Option<Uuid>) -> Result<u64> {
    use audit_inbox::Column as C;
    let source = side.map_or(&inner.db, |s| &s.db);
    let mut chained = 0u64;
    loop {
        let waiting = audit_inbox::Entity::find()
            .select_only()
            .column(C::TenantId)
            .apply_if(only, |q, t| q.filter(C::TenantId.eq(t)))
            .order_by_asc(C::N)
            .limit(CHAIN_BATCH)
            .into_tuple::<Uuid>()
            .all(source)
            .await?;
        if waiting.is_empty() {
            return Ok(chained);
        }
        let mut tenants = waiting;
        tenants.sort_unstable();
        tenants.dedup();
        let txn = inner.begin_write().await?;
        let mut head = lock_heads(&txn, &tenants).await?;
        let batch = audit_inbox::Entity::find()
            .filter(C::TenantId.is_in(tenants.clone()))
            .order_by_asc(C::N)
            .limit(CHAIN_BATCH);
        let events = match side {
            Some(s) => batch.all(&s.db).await?,
            None => batch.all(&*txn).await?,
        };
        let taken: Vec<i64> = events.iter().map(|e| e.n).collect();
        let chained_before: HashSet<Uuid> = match side {
            Some(_) => audit_events::Entity::find()
                .select_only()
                .column(audit_events::Column::Id)
                .filter(audit_events::Column::Id.is_in(events.iter().map(|e| e.id)))
                .into_tuple::<Uuid>()
                .all(&*txn)
                .await?
                .into_iter()
                .collect(),
            None => HashSet::new(),
        };
        let mut moved = BTreeSet::new();
        let mut rows = Vec::with_capacity(events.len());
        for waiting in events {
            if chained_before.contains(&waiting.id) {
                continue;
            }
            // A practice removed meanwhile took its waiting events with it (the inbox's
            // foreign key cascades; a side file's are dropped here); one found here
            // without a head has nowhere to go.
            let Some((seq, hash)) = head.get_mut(&waiting.tenant_id) else {
                continue;
            };
            let mut e = waiting_event(waiting)?;
            e.link(*seq + 1, hash);
            *seq = e.seq;
            hash.clone_from(&e.hash);
            moved.insert(e.tenant_id);
            rows.push(row(e));
        }
        let moved: Vec<Uuid> = moved.into_iter().collect();
        let count = rows.len() as u64;
        write_linked(&txn, &moved, &head, rows).await?;
        let remove = audit_inbox::Entity::delete_many().filter(C::N.is_in(taken));
        match side {
            None => {
                remove.exec(&*txn).await?;
                txn.commit().await?;
            }
            Some(s) => {
                txn.commit().await?;
                let _turn = s.turn.lock().await;
                remove.exec(&s.db).await?;
            }
        }
        chained += count;
    }
}

impl crate::Store {
    /// How many audit events are kept aside and not yet in their chains, in every inbox.
    pub async fn audit_events_waiting(&self) -> Result<u64> {
        let inner = &self.inner;
        let mut n = audit_inbox::Entity::find().count(&inner.db).await?;
        if let Some(side) = &inner.side_inbox {
            n += audit_inbox::Entity::find().count(&side.db).await?;
        }
        Ok(n)
    }
}

/// How long the background chainer lets nudges gather before it chains: one transaction
/// for the searches of that moment instead of one each.
const CHAIN_GATHER: Duration = Duration::from_millis(100);

/// How often the background chainer looks for waiting events nobody nudged it about
/// (those another process kept aside before it stopped).
const CHAIN_SWEEP: Duration = Duration::from_secs(5);

/// Starts the background chainer of a store: it chains the waiting events when nudged
/// ([`Inner::nudge_chainer`]) and every [`CHAIN_SWEEP`], and ends once the store is gone.
pub(crate) fn spawn_chainer(inner: &Arc<Inner>) {
    let store = Arc::downgrade(inner);
    let nudge = inner.chainer.clone();
    tokio::spawn(async move {
        loop {
            // Waits first: a store is connected before its migrations run.
            if tokio::time::timeout(CHAIN_SWEEP, nudge.notified())
                .await
                .is_ok()
            {
                tokio::time::sleep(CHAIN_GATHER).await;
            }
            let Some(inner) = store.upgrade() else { break };
            if let Err(e) = chain_waiting(&inner, None).await {
                tracing::warn!(error = %e, "waiting audit events could not be chained yet");
            }
        }
    });
}

impl Inner {
    /// Tells the background chainer that events were kept aside.
    pub(crate) fn nudge_chainer(&self) {
        self.chainer.notify_one();
    }
}

/// One tenant's audit log.
pub struct AuditLog<'a> {
    scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This tenant's audit log.
    pub fn audit(self) -> AuditLog<'a> {
        AuditLog { scope: self }
    }
}

impl AuditLog<'_> {
    /// Appends an event inside the caller's transaction (committed with it).
    pub async fn append_in(&self, txn: &DatabaseTransaction, event: NewEvent) -> Result<()> {
        let tenant = self.scope.uuid();
        let backend = txn.get_database_backend();
        // Serialise writers of this tenant's chain (see the module comment) and read its
        // head in the same statement.
        let head = txn
            .query_one_raw(stmt(
                backend,
                "UPDATE tenants SET audit_head_seq = audit_head_seq WHERE id = $1 \
                 RETURNING audit_head_seq, audit_head_hash",
                vec![tenant.into()],
            ))
            .await?
            .ok_or(gatehouse_domain::Error::NotFound)?;
        let seq: i64 = head.try_get("", "audit_head_seq")?;
        let prev: String = head.try_get("", "audit_head_hash")?;
        let now = self.scope.inner.clock.now();
        let e = ChainedEvent::next(tenant, seq + 1, now, &prev, event);
        let (new_seq, new_hash) = (e.seq, e.hash.clone());
        let insert = audit_events::Entity::insert(row(e));
        if backend == DbBackend::Postgres {
            // The event and the new head in one statement (a data-modifying WITH runs
            // exactly once): one round trip less for every audited write.
            let insert = insert.build(backend);
            let mut values = insert.values.map(|v| v.0).unwrap_or_default();
            let n = values.len();
            values.extend([new_seq.into(), new_hash.into(), tenant.into()]);
            let sql = format!(
                "WITH appended AS ({}) \
                 UPDATE tenants SET audit_head_seq = ${}, audit_head_hash = ${} WHERE id = ${}",
                insert.sql,
                n + 1,
                n + 2,
                n + 3
            );
            txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
            return Ok(());
        }
        insert.exec_without_returning(txn).await?;
        txn.execute_raw(stmt(
            backend,
            "UPDATE tenants SET audit_head_seq = $2, audit_head_hash = $3 WHERE id = $1",
            vec![tenant.into(), new_seq.into(), new_hash.into()],
        ))
        .await?;
        Ok(())
    }

    /// Appends an event in a transaction of its own.
    pub async fn record(&self, event: NewEvent) -> Result<()> {
        let txn = self.scope.inner.begin_write().await?;
        self.append_in(&txn, event).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Events newest first, filtered; the cursor is the `seq` to continue below.
    pub async fn list(
        &self,
        filter: &AuditFilter,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<ChainedEvent>> {
        use audit_events::Column as C;
        chain_waiting(self.scope.inner, Some(self.scope.uuid())).await?;
        let mut q = audit_events::Entity::find().filter(C::TenantId.eq(self.scope.uuid()));
        if let Some(a) = &filter.action {
            q = q.filter(C::Action.eq(a.as_str()));
        }
        if let Some(a) = filter.actor_id {
            q = q.filter(C::ActorId.eq(a));
        }
        if let Some(t) = &filter.target_id {
            q = q.filter(C::TargetId.eq(t.as_str()));
        }
        if let Some(s) = filter.since {
            q = q.filter(C::At.gte(s));
        }
        if let Some(u) = filter.until {
            q = q.filter(C::At.lt(u));
        }
        if let Some(c) = cursor {
            let seq: i64 = c.parse().map_err(|_| {
                gatehouse_domain::Error::field("cursor", "not a cursor of this list")
            })?;
            q = q.filter(C::Seq.lt(seq));
        }
        let mut rows = q
            .order_by_desc(C::Seq)
            .limit(limit + 1)
            .all(&self.scope.inner.db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.seq.to_string())
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(to_chained)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    /// Walks the whole chain in order and recomputes every hash.
    pub async fn verify(&self) -> Result<ChainReport> {
        use audit_events::Column as C;
        chain_waiting(self.scope.inner, Some(self.scope.uuid())).await?;
        let mut v = ChainVerifier::default();
        let mut after = 0i64;
        loop {
            let rows = audit_events::Entity::find()
                .filter(C::TenantId.eq(self.scope.uuid()))
                .filter(C::Seq.gt(after))
                .order_by_asc(C::Seq)
                .limit(1000)
                .all(&self.scope.inner.db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for r in rows {
                let seq = r.seq;
                // A row whose details no longer parse was tampered with: a break, not a 500.
                match to_chained(r) {
                    Ok(e) => v.push(&e),
                    Err(_) => v.push_unreadable(seq),
                }
            }
        }
        // The chain must end where the tenant row says it does: otherwise its newest
        // events were removed.
        let head = crate::entities::tenants::Entity::find_by_id(self.scope.uuid())
            .one(&self.scope.inner.db)
            .await?
            .ok_or(gatehouse_domain::Error::NotFound)?;
        v.expect_head(head.audit_head_seq, &head.audit_head_hash);
        Ok(ChainReport {
            ok: v.broken_at().is_none(),
            events: v.events(),
            first_bad_seq: v.broken_at(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Store;
    use crate::scale::ScaleSpec;
    use gatehouse_domain::ids::CompanyId;
    use gatehouse_domain::settings::MfaPolicy;
    use secrecy::SecretString;

    fn read(tenant: &Tenant) -> (TenantId, NewEvent) {
        let event = event(
            Actor::system(),
            Some(tenant_target(tenant)),
            &RequestMeta::default(),
            Details::SupportRead {
                path: "/v1/support/users".into(),
                query: None,
                role: None,
            },
        );
        (tenant.id, event)
    }

    async fn chain_of(store: &Store, tenant: &Tenant) -> Vec<Uuid> {
        let log = store.tenant(tenant.id).audit();
        assert!(log.verify().await.unwrap().ok);
        let page = log.list(&AuditFilter::default(), 100, None).await.unwrap();
        page.items.into_iter().map(|e| e.id).collect()
    }

    /// SQLite: events kept aside wait in a file of their own beside the database, and
    /// reach their chains exactly once even when a chainer stopped between writing them
    /// into the log and removing them from that file (no transaction spans the two). Events
    /// an earlier version left in the database's own inbox are chained too.
    #[tokio::test]
    async fn s1_sqlite_side_inbox_chains_each_event_once_across_a_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gh.db");
        let store = crate::sqlite_store_for_tests(&path).await;
        store.migrate().await.unwrap();
        store
            .seed_scale(&ScaleSpec {
                prefix: "side".into(),
                tenants: 2,
                users_per_tenant: 1,
                password: SecretString::from("correct horse battery staple".to_owned()),
                mfa_policy: MfaPolicy::Off,
                mfa_methods: false,
            })
            .await
            .unwrap();
        let a = store
            .find_tenant(&CompanyId::parse("side-00001").unwrap())
            .await
            .unwrap()
            .unwrap();
        let b = store
            .find_tenant(&CompanyId::parse("side-00002").unwrap())
            .await
            .unwrap()
            .unwrap();
        let before = (
            chain_of(&store, &a).await.len(),
            chain_of(&store, &b).await.len(),
        );
        let inner = &store.inner;
        let side = inner.side_inbox.as_ref().expect("a side inbox on SQLite");
        assert!(dir.path().join("gh.db-audit-inbox").exists());

        // A search's reads wait in the side file, not in the database.
        let now = inner.clock.now();
        keep_aside(inner, now, vec![read(&a), read(&b), read(&a)])
            .await
            .unwrap();
        let in_database = audit_inbox::Entity::find().count(&inner.db).await.unwrap();
        assert_eq!(in_database, 0);
        chain_waiting(inner, None).await.unwrap();
        assert_eq!(store.audit_events_waiting().await.unwrap(), 0);
        let chained = chain_of(&store, &a).await;
        assert_eq!(chained.len(), before.0 + 2);
        assert_eq!(chain_of(&store, &b).await.len(), before.1 + 1);

        // A chainer that stopped after its commit left its events in the side file: the
        // next one removes them without chaining them again, and chains the new one.
        let (tenant, again) = read(&a);
        let stopped = ChainedEvent::unlinked(tenant.0, now, again);
        let (tenant, copy) = read(&a);
        let mut leftover = ChainedEvent::unlinked(tenant.0, now, copy);
        leftover.id = chained[0];
        for e in [leftover, stopped.clone()] {
            audit_inbox::Entity::insert(waiting_row(e))
                .exec_without_returning(&side.db)
                .await
                .unwrap();
        }
        // An event an earlier version kept aside in the database itself.
        let (tenant, old) = read(&b);
        let old = ChainedEvent::unlinked(tenant.0, now, old);
        audit_inbox::Entity::insert(waiting_row(old.clone()))
            .exec_without_returning(&inner.db)
            .await
            .unwrap();

        assert_eq!(chain_waiting(inner, None).await.unwrap(), 2);
        assert_eq!(store.audit_events_waiting().await.unwrap(), 0);
        let a_chain = chain_of(&store, &a).await;
        assert_eq!(a_chain.len(), before.0 + 3);
        assert_eq!(a_chain[0], stopped.id, "the new event is the newest");
        let distinct: BTreeSet<Uuid> = a_chain.iter().copied().collect();
        assert_eq!(distinct.len(), a_chain.len(), "an event was chained twice");
        let b_chain = chain_of(&store, &b).await;
        assert_eq!(b_chain.len(), before.1 + 2);
        assert_eq!(b_chain[0], old.id);
    }
}
