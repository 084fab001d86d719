//! Tries taken before a secret is judged (P4, M13).
//!
//! Every guess at a password or a second-factor code is counted *before* it is compared,
//! by one conditional `UPDATE ... RETURNING` that only succeeds while the counter is under
//! its limit. A burst of concurrent guesses is therefore judged as if it came one by one:
//! no more guesses are ever compared than the limit allows, whatever their timing. A guess
//! that turns out right gives its try back (or resets the counter); a wrong one keeps it,
//! and the guess that brings a user's counter to the limit locks the user.
//!
//! The counters: wrong passwords of a user (the tenant's `lockout_threshold`), wrong
//! second-factor codes of a user across flows and sessions (M13, 10), and wrong
//! authenticator or recovery codes on one flow or session (5). One-time codes count on
//! their challenge in the same way (see `mfa::challenges`).
//!
//! Passwords keep the tries being checked apart from the failures judged
//! (`users.login_tries` beside `failed_logins`): a wrong password turns its try into a
//! failure, and a right one gives its try back and waits for the guesses checked beside it
//! to be judged first. So in a burst of guesses the right password is judged last: if the
//! burst reaches the lock, the right password meets the lock (423), never a session.

use crate::scope::TenantScope;
use crate::sql::stmt;
use crate::{Result, StoreError};
use gatehouse_domain::ids::UserId;
use gatehouse_domain::mfa::codes::MAX_ATTEMPTS;
use sea_orm::ConnectionTrait;
use std::time::Duration;
use uuid::Uuid;

/// Wrong second-factor codes in a row, any method, after which the user is locked (M13).
pub const MAX_USER_MFA_FAILURES: u32 = 10;

/// How long a guess waits for the guesses in flight before it when they hold every try
/// left: they are judged within an Argon2id verify or a code comparison.
const WAIT_FOR_IN_FLIGHT: Duration = Duration::from_secs(5);

/// A password try still in flight after this long is from a process that stopped while
/// checking it, and no longer holds a place.
const STALE_TRY_SECONDS: i64 = 30;

/// A counter that tries are taken from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// Wrong second-factor codes of a user in a row, any method (M13).
    UserMfa,
    /// Wrong authenticator or recovery codes within one sign-in flow.
    Flow,
    /// Wrong authenticator or recovery codes within one session (step-up, self-service).
    Session,
}

/// The outcome of taking a try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// The try is taken: it is the `n`th in a row.
    Yes(u32),
    /// The user is locked: nothing more is counted.
    Locked,
    /// Every try is used (a flow or session), or still held by guesses in flight after
    /// waiting for them (a user).
    Full,
}

impl Counter {
    fn limit(self) -> u32 {
        match self {
            Counter::UserMfa => MAX_USER_MFA_FAILURES,
            Counter::Flow | Counter::Session => MAX_ATTEMPTS,
        }
    }

    fn on_user(self) -> bool {
        matches!(self, Counter::UserMfa)
    }

    /// `$1` the row, `$2` the tenant, `$3` the limit; answers the count as `n`.
    fn take_sql(self) -> &'static str {
        match self {
            Counter::UserMfa => {
                "UPDATE users SET mfa_failures = mfa_failures + 1 \
                 WHERE id = $1 AND tenant_id = $2 AND NOT locked AND mfa_failures < $3 \
                 RETURNING mfa_failures AS n"
            }
            Counter::Flow => {
                "UPDATE sign_in_flows SET mfa_failures = mfa_failures + 1 \
                 WHERE id = $1 AND tenant_id = $2 AND mfa_failures < $3 \
                 RETURNING mfa_failures AS n"
            }
            Counter::Session => {
                "UPDATE sessions SET mfa_failures = mfa_failures + 1 \
                 WHERE id = $1 AND tenant_id = $2 AND mfa_failures < $3 \
                 RETURNING mfa_failures AS n"
            }
        }
    }

    /// Gives one try back (`$1` the row, `$2` the tenant).
    fn release_sql(self) -> &'static str {
        match self {
            Counter::UserMfa => {
                "UPDATE users SET mfa_failures = mfa_failures - 1 \
                 WHERE id = $1 AND tenant_id = $2 AND mfa_failures > 0"
            }
            Counter::Flow => {
                "UPDATE sign_in_flows SET mfa_failures = mfa_failures - 1 \
                 WHERE id = $1 AND tenant_id = $2 AND mfa_failures > 0"
            }
            Counter::Session => {
                "UPDATE sessions SET mfa_failures = mfa_failures - 1 \
                 WHERE id = $1 AND tenant_id = $2 AND mfa_failures > 0"
            }
        }
    }

    /// Starts the count again after a success (`$1` the row, `$2` the tenant).
    fn reset_sql(self) -> &'static str {
        match self {
            Counter::UserMfa => {
                "UPDATE users SET mfa_failures = 0 WHERE id = $1 AND tenant_id = $2"
            }
            Counter::Flow => {
                "UPDATE sign_in_flows SET mfa_failures = 0 WHERE id = $1 AND tenant_id = $2"
            }
            Counter::Session => {
                "UPDATE sessions SET mfa_failures = 0 WHERE id = $1 AND tenant_id = $2"
            }
        }
    }
}

/// Takes a password try (`$1` user, `$2` tenant, `$3` threshold, `$4` now, `$5` the time
/// before which tries in flight are stale): only while the failures and the tries in
/// flight together are under the threshold. Answers the try's place in the row as `n`.
const TAKE_PASSWORD: &str = "UPDATE users SET \
     login_tries = CASE WHEN login_tries_at IS NULL OR login_tries_at < $5 \
                   THEN 1 ELSE login_tries + 1 END, \
     login_tries_at = $4 \
     WHERE id = $1 AND tenant_id = $2 AND NOT locked \
     AND failed_logins + CASE WHEN login_tries_at IS NULL OR login_tries_at < $5 \
                         THEN 0 ELSE login_tries END < $3 \
     RETURNING failed_logins + login_tries AS n";

/// A wrong password (`$1` user, `$2` tenant, `$3` threshold): its try becomes a failure,
/// and the failure that reaches the threshold locks the user.
const PASSWORD_WRONG: &str = "UPDATE users SET \
     login_tries = CASE WHEN login_tries > 0 THEN login_tries - 1 ELSE 0 END, \
     failed_logins = failed_logins + 1, \
     locked = CASE WHEN failed_logins + 1 >= $3 THEN TRUE ELSE locked END \
     WHERE id = $1 AND tenant_id = $2 \
     RETURNING failed_logins AS n, locked";

/// A password try given back (`$1` user, `$2` tenant).
const PASSWORD_RELEASE: &str = "UPDATE users SET \
     login_tries = CASE WHEN login_tries > 0 THEN login_tries - 1 ELSE 0 END \
     WHERE id = $1 AND tenant_id = $2";

/// Whether password tries are still in flight (`$1` user, `$2` tenant, `$3` stale before).
const PASSWORD_PENDING: &str = "SELECT locked, \
     CASE WHEN login_tries_at IS NULL OR login_tries_at < $3 THEN 0 ELSE login_tries END \
     AS pending FROM users WHERE id = $1 AND tenant_id = $2";

/// Locks the user if wrong codes are (still) at the limit (`$3`).
const LOCK_MFA: &str = "UPDATE users SET locked = TRUE \
     WHERE id = $1 AND tenant_id = $2 AND NOT locked AND mfa_failures >= $3";

/// The tries of one tenant's users, flows and sessions.
pub struct Tries<'a> {
    scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    pub fn tries(self) -> Tries<'a> {
        Tries { scope: self }
    }
}

impl Tries<'_> {
    /// Takes a try from `counter` of row `id` before a guess is compared. On a user's
    /// counter whose every try is held by guesses in flight, waits (briefly) until they
    /// are judged, so that the guess is judged after them as if they came one by one.
    pub async fn take(&self, counter: Counter, id: Uuid) -> Result<Taken> {
        let db = &self.scope.inner.db;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_IN_FLIGHT;
        let mut pause = Duration::from_millis(5);
        loop {
            let turn = self.scope.inner.write_turn().await;
            let row = db
                .query_one_raw(stmt(
                    db.get_database_backend(),
                    counter.take_sql(),
                    vec![
                        id.into(),
                        self.scope.uuid().into(),
                        i64::from(counter.limit()).into(),
                    ],
                ))
                .await?;
            drop(turn);
            if let Some(r) = row {
                let n: i32 = r.try_get("", "n")?;
                return Ok(Taken::Yes(u32::try_from(n).unwrap_or(u32::MAX)));
            }
            if !counter.on_user() {
                return Ok(Taken::Full);
            }
            if self.locked(id).await? {
                return Ok(Taken::Locked);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(Taken::Full);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn locked(&self, user: Uuid) -> Result<bool> {
        let db = &self.scope.inner.db;
        let row = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "SELECT locked FROM users WHERE id = $1 AND tenant_id = $2",
                vec![user.into(), self.scope.uuid().into()],
            ))
            .await?
            .ok_or(gatehouse_domain::Error::NotFound)?;
        Ok(row.try_get::<bool>("", "locked")?)
    }

    /// Gives a try back: the guess was not judged (refused for another reason) or was
    /// right where the count must stay as it was.
    pub async fn release(&self, counter: Counter, id: Uuid) -> Result<()> {
        self.exec(counter.release_sql(), id).await
    }

    /// A right guess: the count starts again.
    pub async fn reset(&self, counter: Counter, id: Uuid) -> Result<()> {
        self.exec(counter.reset_sql(), id).await
    }

    /// After a wrong code that took the `n`th try in a row: locks the user if it was the
    /// last one allowed (M13) and no success or given-back try has lowered the count since.
    /// `true` when this call locked them (exactly one concurrent guess does). The count
    /// includes guesses still being compared, so the place taken, not the count, decides.
    pub async fn lock_if_mfa_limit<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: Uuid,
        n: u32,
    ) -> Result<bool> {
        if n < MAX_USER_MFA_FAILURES {
            return Ok(false);
        }
        let done = conn
            .execute_raw(stmt(
                conn.get_database_backend(),
                LOCK_MFA,
                vec![
                    user.into(),
                    self.scope.uuid().into(),
                    i64::from(MAX_USER_MFA_FAILURES).into(),
                ],
            ))
            .await?
            .rows_affected();
        if done == 1 {
            self.scope.inner.cache.invalidate_user(UserId(user));
        }
        Ok(done == 1)
    }

    /// Takes a try before a password is checked (P4). When the failures and the tries in
    /// flight hold every place left, waits (briefly) for those to be judged.
    pub async fn take_password(&self, user: Uuid, threshold: u32) -> Result<Taken> {
        let db = &self.scope.inner.db;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_IN_FLIGHT;
        let mut pause = Duration::from_millis(5);
        loop {
            let now = self.scope.inner.clock.now();
            let turn = self.scope.inner.write_turn().await;
            let row = db
                .query_one_raw(stmt(
                    db.get_database_backend(),
                    TAKE_PASSWORD,
                    vec![
                        user.into(),
                        self.scope.uuid().into(),
                        i64::from(threshold.max(1)).into(),
                        now.into(),
                        (now - chrono::Duration::seconds(STALE_TRY_SECONDS)).into(),
                    ],
                ))
                .await?;
            drop(turn);
            if let Some(r) = row {
                let n: i32 = r.try_get("", "n")?;
                return Ok(Taken::Yes(u32::try_from(n).unwrap_or(u32::MAX)));
            }
            if self.locked(user).await? {
                return Ok(Taken::Locked);
            }
            if tokio::time::Instant::now() + pause > deadline {
                return Ok(Taken::Full);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// A wrong password: its try becomes a failure. Answers the failures in a row and
    /// whether this one locked the user (it reached the threshold).
    pub async fn password_wrong<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: Uuid,
        threshold: u32,
    ) -> Result<(u32, bool)> {
        let threshold = threshold.max(1);
        let row = conn
            .query_one_raw(stmt(
                conn.get_database_backend(),
                PASSWORD_WRONG,
                vec![
                    user.into(),
                    self.scope.uuid().into(),
                    i64::from(threshold).into(),
                ],
            ))
            .await?
            .ok_or(gatehouse_domain::Error::NotFound)?;
        let n = u32::try_from(row.try_get::<i32>("", "n")?).unwrap_or(u32::MAX);
        let locked: bool = row.try_get("", "locked")?;
        // Failures go up one at a time and stop at the lock: one of them is the threshold.
        let locked_now = locked && n == threshold;
        if locked_now {
            self.scope.inner.cache.invalidate_user(UserId(user));
        }
        Ok((n, locked_now))
    }

    /// A right password (or one whose check failed): the try is given back.
    pub async fn password_release(&self, user: Uuid) -> Result<()> {
        self.exec(PASSWORD_RELEASE, user).await
    }

    /// A right password: the try is given back, then the guesses checked beside it are
    /// judged first (a bounded wait), so that a lock they reach wins over it.
    pub async fn password_right(&self, user: Uuid) -> Result<()> {
        self.password_release(user).await?;
        let db = &self.scope.inner.db;
        let deadline = tokio::time::Instant::now() + WAIT_FOR_IN_FLIGHT;
        let mut pause = Duration::from_millis(5);
        loop {
            let stale = self.scope.inner.clock.now() - chrono::Duration::seconds(STALE_TRY_SECONDS);
            let row = db
                .query_one_raw(stmt(
                    db.get_database_backend(),
                    PASSWORD_PENDING,
                    vec![user.into(), self.scope.uuid().into(), stale.into()],
                ))
                .await?
                .ok_or(gatehouse_domain::Error::NotFound)?;
            let locked: bool = row.try_get("", "locked")?;
            let pending: i32 = row.try_get("", "pending")?;
            if locked || pending <= 0 || tokio::time::Instant::now() + pause > deadline {
                return Ok(());
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    async fn exec(&self, sql: &str, id: Uuid) -> Result<()> {
        let db = &self.scope.inner.db;
        let _turn = self.scope.inner.write_turn().await;
        db.execute_raw(stmt(
            db.get_database_backend(),
            sql,
            vec![id.into(), self.scope.uuid().into()],
        ))
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }
}
