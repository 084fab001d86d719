//! What sign-in reads and writes: the practice and the user behind a company and user id
//! (one query), the Argon2id checks, the flow rows and the user row's sign-in step.
//!
//! The flow's decisions are `gatehouse_domain::mfa::flow`; its steps (password, second
//! factor, enrollment) are gatehouse-app's `signin`.

use crate::entities::{sign_in_flows, tenants, users};
use crate::error::StoreError;
use crate::records::{Tenant, User};
use crate::scope::TenantScope;
use crate::sql::{prefixed_columns, stmt};
use crate::users::Users;
use crate::{RequestMeta, Result, Store, WriteTxn};
use chrono::{DateTime, Utc};
use gatehouse_domain::ids::{CompanyId, FlowId, TenantId, UserId, Username};
use gatehouse_domain::mfa::flow::FlowState;
use gatehouse_domain::password::Verified;
use gatehouse_domain::signin::FlowStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
};
use secrecy::SecretString;
use uuid::Uuid;

/// What the sign-in query tells about a user besides the record.
#[derive(Debug, Clone, Copy)]
pub struct LoginHints {
    /// The user has login hours (without, any time is allowed).
    pub login_hours: bool,
    /// The practice has trusted networks for everyone or for this user.
    pub trusted_networks: bool,
}

/// A user as the password step finds them.
#[derive(Debug)]
pub struct LoginUser {
    /// With `totp_enrolled` and `recovery_codes_remaining`; without groups.
    pub user: User,
    /// The stored Argon2id hash (PHC string).
    pub password_hash: String,
    pub hints: LoginHints,
}

/// A sign-in flow as stored.
#[derive(Debug, Clone)]
pub struct SignInFlow {
    pub id: FlowId,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub status: FlowStatus,
    /// What the flow has learnt so far.
    pub state: FlowState,
    pub expires_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl SignInFlow {
    fn from_model(m: sign_in_flows::Model) -> Result<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("flow {}: {what}", m.id));
        Ok(SignInFlow {
            status: FlowStatus::parse(&m.status).ok_or_else(|| corrupt("status"))?,
            state: FlowState::from_json(&m.state).ok_or_else(|| corrupt("state"))?,
            id: FlowId(m.id),
            tenant_id: TenantId(m.tenant_id),
            user_id: UserId(m.user_id),
            expires_at: m.expires_at,
            completed_at: m.completed_at,
        })
    }
}

/// A flow to store, at its first step.
#[derive(Debug)]
pub struct NewFlow<'a> {
    pub user: UserId,
    pub status: FlowStatus,
    pub state: &'a FlowState,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// Set when the first step already signs the user in.
    pub completed_at: Option<DateTime<Utc>>,
}

/// One practice's sign-in flows.
pub struct Flows<'a> {
    scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This practice's sign-in flows.
    pub fn flows(self) -> Flows<'a> {
        Flows { scope: self }
    }
}

impl Flows<'_> {
    /// Stores a new flow (with the client's address and agent); its id.
    pub async fn insert(
        &self,
        txn: &WriteTxn,
        new: NewFlow<'_>,
        meta: &RequestMeta,
    ) -> Result<FlowId> {
        let id = Uuid::new_v4();
        let row = sign_in_flows::ActiveModel {
            id: Set(id),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(new.user.0),
            status: Set(new.status.as_str().to_owned()),
            state: Set(new.state.to_json()),
            ip: Set(meta.ip_string()),
            user_agent: Set(meta.user_agent_trimmed()),
            created_at: Set(new.created_at),
            expires_at: Set(new.expires_at),
            completed_at: Set(new.completed_at),
            mfa_failures: Set(0),
        };
        sign_in_flows::Entity::insert(row)
            .exec_without_returning(&**txn)
            .await?;
        Ok(FlowId(id))
    }

    /// Moves `flow` to its next step, if it is still open at the step it was read at: of
    /// two concurrent steps on one flow, one moves it. Whether this one did.
    pub async fn advance(
        &self,
        txn: &WriteTxn,
        flow: &SignInFlow,
        status: FlowStatus,
        state: &FlowState,
        completed_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let moved = sign_in_flows::Entity::update_many()
            .col_expr(sign_in_flows::Column::Status, Expr::value(status.as_str()))
            .col_expr(sign_in_flows::Column::State, Expr::value(state.to_json()))
            .col_expr(
                sign_in_flows::Column::CompletedAt,
                Expr::value(completed_at),
            )
            .filter(sign_in_flows::Column::Id.eq(flow.id.0))
            .filter(sign_in_flows::Column::TenantId.eq(self.scope.uuid()))
            .filter(sign_in_flows::Column::Status.eq(flow.status.as_str()))
            .filter(sign_in_flows::Column::CompletedAt.is_null())
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(moved == 1)
    }
}

impl Users<'_> {
    /// Records a sign-in step of `user` in `txn`: the failed-password count starts again,
    /// a new hash (a rehash, after the password) replaces the stored one, and
    /// `signed_in_at` becomes the last sign-in. Only while the user is not locked: a lock
    /// reached while the step ran (a burst of wrong passwords or codes) wins over it
    /// (P4, M13). Whether the user was not locked. Writes the user row first, so that
    /// SQLite's write lock is taken up front.
    pub async fn record_sign_in_step(
        &self,
        txn: &WriteTxn,
        user: UserId,
        new_hash: Option<String>,
        signed_in_at: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let mut upd = users::Entity::update_many()
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .filter(users::Column::Id.eq(user.0))
            .filter(users::Column::TenantId.eq(self.scope.uuid()))
            .filter(users::Column::Locked.eq(false));
        if let Some(h) = new_hash {
            upd = upd.col_expr(users::Column::PasswordHash, Expr::value(h));
        }
        if let Some(at) = signed_in_at {
            upd = upd.col_expr(users::Column::LastLoginAt, Expr::value(Some(at)));
        }
        Ok(upd.exec(&**txn).await?.rows_affected == 1)
    }
}

impl Store {
    /// The practice and (if it exists) the user, in one query, with whether the user has
    /// login hours and the practice trusted networks that may apply to the user: most have
    /// neither, and their sign-in then skips those two reads.
    pub async fn load_for_login(
        &self,
        company: &CompanyId,
        username: &Username,
    ) -> Result<Option<(Tenant, Option<LoginUser>)>> {
        let sql = format!(
            "SELECT {t}, {u}, \
             (SELECT COUNT(*) FROM login_hours h \
              WHERE h.tenant_id = t.id AND h.user_id = u.id) AS n_login_hours, \
             (SELECT COUNT(*) FROM trusted_networks n \
              WHERE n.tenant_id = t.id AND (n.user_id IS NULL OR n.user_id = u.id)) AS n_networks, \
             (SELECT COUNT(*) FROM totp_credentials c \
              WHERE c.tenant_id = t.id AND c.user_id = u.id AND c.confirmed = $3) AS n_totp, \
             (SELECT COUNT(*) FROM recovery_codes r \
              WHERE r.tenant_id = t.id AND r.user_id = u.id AND r.used_at IS NULL) AS n_recovery \
             FROM tenants t \
             LEFT JOIN users u ON u.tenant_id = t.id AND u.username_lower = $2 \
             WHERE t.company = $1",
            t = prefixed_columns::<tenants::Column>("t", "t_"),
            u = prefixed_columns::<users::Column>("u", "u_"),
        );
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                self.backend(),
                &sql,
                vec![
                    company.as_str().into(),
                    username.lower().into(),
                    true.into(),
                ],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let tenant = Tenant::try_from(tenants::Model::from_query_result(&row, "t_")?)?;
        let user_id: Option<Uuid> = row.try_get("", "u_id")?;
        let user = match user_id {
            Some(_) => {
                let m = users::Model::from_query_result(&row, "u_")?;
                let password_hash = m.password_hash.clone();
                let mut user = User::from_model(m)?;
                user.totp_enrolled = row.try_get::<i64>("", "n_totp")? > 0;
                user.recovery_codes_remaining =
                    u32::try_from(row.try_get::<i64>("", "n_recovery")?).unwrap_or(u32::MAX);
                Some(LoginUser {
                    user,
                    password_hash,
                    hints: LoginHints {
                        login_hours: row.try_get::<i64>("", "n_login_hours")? > 0,
                        trusted_networks: row.try_get::<i64>("", "n_networks")? > 0,
                    },
                })
            }
            None => None,
        };
        Ok(Some((tenant, user)))
    }

    /// A sign-in flow by id, in whichever practice it is.
    pub async fn find_flow(&self, id: FlowId) -> Result<Option<SignInFlow>> {
        sign_in_flows::Entity::find_by_id(id.0)
            .one(&self.inner.db)
            .await?
            .map(SignInFlow::from_model)
            .transpose()
    }

    /// Checks `password` against a stored hash on the Argon2id pool.
    pub async fn verify_password(&self, hash: String, password: SecretString) -> Result<Verified> {
        self.inner.hasher.verify(hash, password).await
    }

    /// Checks `password` against a hash nobody has, so that a sign-in as a user who does
    /// not exist costs what a real one does.
    pub async fn verify_nobody(&self, password: SecretString) -> Result<()> {
        self.inner
            .hasher
            .verify(self.inner.dummy_hash.clone(), password)
            .await?;
        Ok(())
    }

    /// Hashes a password on the Argon2id pool.
    pub async fn hash_password(&self, password: SecretString) -> Result<String> {
        self.inner.hasher.hash(password).await
    }

    /// The per-address allowance of sign-in attempts (see [`crate::ratelimit`]).
    pub fn login_limiter(&self) -> &crate::ratelimit::LoginLimiter {
        &self.inner.login_limiter
    }
}
