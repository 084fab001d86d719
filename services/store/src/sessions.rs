//! Sessions: creation after a completed sign-in, the hot-path check, ending one, revocation.
//!
//! `GET /v1/auth/session` is served from the in-process cache on a hit; on a miss it costs
//! exactly one database read (session, user, tenant and groups in one joined query).

use crate::entities::{sessions, tenants, users};
use crate::records::{GroupRef, Principal, PrincipalData, Tenant, TenantStatus, User};
use crate::scope::TenantScope;
use crate::sql::{prefixed_columns, stmt};
use crate::{RequestMeta, Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::{GroupId, SessionId, TenantId, UserId};
use gatehouse_domain::session::{hash_token, new_token};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
};
use secrecy::SecretString;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use uuid::Uuid;

/// Activity is written back to the database at most this often per session.
const TOUCH_INTERVAL_SECS: i64 = 60;

/// A session just created: the token is shown once, to the client that signed in.
#[derive(Debug)]
pub struct NewSession {
    pub token: SecretString,
    pub expires_at: DateTime<Utc>,
}

impl TenantScope<'_> {
    /// Creates a session for a user of this tenant inside the caller's transaction.
    pub async fn create_session<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        meta: &RequestMeta,
        mfa_verified_at: Option<DateTime<Utc>>,
        amr: &gatehouse_domain::oidc::AuthContext,
    ) -> Result<NewSession> {
        let now = self.inner.clock.now();
        let token = new_token(&mut rand::rngs::OsRng);
        let expires_at = now + self.inner.config.session_policy.absolute;
        let row = sessions::ActiveModel {
            id: Set(Uuid::new_v4()),
            token_hash: Set(token.hash),
            tenant_id: Set(self.uuid()),
            user_id: Set(user.0),
            created_at: Set(now),
            expires_at: Set(expires_at),
            last_seen_at: Set(now),
            mfa_verified_at: Set(mfa_verified_at),
            revoked_at: Set(None),
            mfa_failures: Set(0),
            amr: Set(Some(amr.to_text())),
            ip: Set(meta.ip_string()),
            user_agent: Set(meta.user_agent_trimmed()),
        };
        sessions::Entity::insert(row)
            .exec_without_returning(conn)
            .await?;
        Ok(NewSession {
            token: token.token,
            expires_at,
        })
    }

    /// Ends every live session of a user (optionally but one), in the database.
    pub async fn revoke_user_sessions<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        except: Option<SessionId>,
    ) -> Result<u64> {
        let now = self.inner.clock.now();
        let mut q = sessions::Entity::update_many()
            .col_expr(
                sessions::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(sessions::Column::TenantId.eq(self.uuid()))
            .filter(sessions::Column::UserId.eq(user.0))
            .filter(sessions::Column::RevokedAt.is_null());
        if let Some(keep) = except {
            q = q.filter(sessions::Column::Id.ne(keep.0));
        }
        Ok(q.exec(conn).await?.rows_affected)
    }

    /// Ends every live session of this tenant (suspension), in the database.
    pub async fn revoke_all_sessions<C: ConnectionTrait>(&self, conn: &C) -> Result<u64> {
        let now = self.inner.clock.now();
        Ok(sessions::Entity::update_many()
            .col_expr(
                sessions::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(sessions::Column::TenantId.eq(self.uuid()))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected)
    }
}

impl Store {
    /// Resolves a bearer token to its live session (cache first).
    pub async fn authenticate(&self, token: &SecretString) -> Result<Principal> {
        let hash = hash_token(token);
        let now = self.inner.clock.now();
        let policy = self.inner.config.session_policy;
        let cached = self.inner.cache.get(&hash);
        let result = if cached.is_some() { "hit" } else { "miss" };
        crate::telemetry::metrics()
            .session_cache
            .add(1, &[crate::telemetry::label("result", result)]);
        if let Some(p) = cached {
            if policy.is_alive(p.expires_at, p.last_seen_at(), now) {
                self.touch(&p, now);
                return Ok(p);
            }
            self.inner.cache.invalidate(&hash);
            return Err(DomainError::Unauthenticated.into());
        }
        let epoch = self.inner.cache.epoch();
        let p = self
            .load_session(&hash)
            .await?
            .ok_or(DomainError::Unauthenticated)?;
        if !policy.is_alive(p.expires_at, p.last_seen_at(), now) {
            return Err(DomainError::Unauthenticated.into());
        }
        self.touch(&p, now);
        self.inner.cache.insert(p.clone(), epoch);
        Ok(p)
    }

    /// Records activity: in memory at once, in the database at most once a minute.
    fn touch(&self, p: &Principal, now: DateTime<Utc>) {
        let now_s = now.timestamp();
        let seen = p.last_seen.load(Ordering::Relaxed);
        if now_s - seen < TOUCH_INTERVAL_SECS {
            return;
        }
        if p.last_seen
            .compare_exchange(seen, now_s, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return; // another request is already touching it
        }
        let inner = self.inner.clone();
        let id = p.session_id.0;
        tokio::spawn(async move {
            let _turn = inner.write_turn().await;
            let r = sessions::Entity::update_many()
                .col_expr(
                    sessions::Column::LastSeenAt,
                    sea_orm::sea_query::Expr::value(now),
                )
                .filter(sessions::Column::Id.eq(id))
                .exec(&inner.db)
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "could not record session activity");
            }
        });
    }

    /// The one database read of a cache miss.
    async fn load_session(&self, token_hash: &str) -> Result<Option<Principal>> {
        let backend = self.backend();
        let sql = format!(
            "SELECT {s}, {u}, {t}, g.id AS g_id, g.name AS g_name, \
             (SELECT COUNT(*) FROM totp_credentials tc WHERE tc.tenant_id = s.tenant_id \
              AND tc.user_id = u.id AND tc.confirmed) AS m_totp, \
             (SELECT COUNT(*) FROM recovery_codes rc WHERE rc.tenant_id = s.tenant_id \
              AND rc.user_id = u.id AND rc.used_at IS NULL) AS m_left \
             FROM sessions s \
             JOIN users u ON u.id = s.user_id AND u.tenant_id = s.tenant_id \
             JOIN tenants t ON t.id = s.tenant_id \
             LEFT JOIN group_members gm ON gm.user_id = u.id AND gm.tenant_id = s.tenant_id \
             LEFT JOIN groups g ON g.id = gm.group_id \
             WHERE s.token_hash = $1 AND s.revoked_at IS NULL \
             ORDER BY g.name_lower",
            s = prefixed_columns::<sessions::Column>("s", "s_"),
            u = prefixed_columns::<users::Column>("u", "u_"),
            t = prefixed_columns::<tenants::Column>("t", "t_"),
        );
        let rows = self
            .inner
            .db
            .query_all_raw(stmt(backend, &sql, vec![token_hash.into()]))
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let s = sessions::Model::from_query_result(first, "s_")?;
        let mut user = User::from_model(users::Model::from_query_result(first, "u_")?)?;
        let tenant = Tenant::try_from(tenants::Model::from_query_result(first, "t_")?)?;
        user.totp_enrolled = first.try_get::<i64>("", "m_totp")? > 0;
        user.recovery_codes_remaining =
            u32::try_from(first.try_get::<i64>("", "m_left")?).unwrap_or(0);
        for row in &rows {
            let id: Option<Uuid> = row.try_get("", "g_id")?;
            let name: Option<String> = row.try_get("", "g_name")?;
            if let (Some(id), Some(name)) = (id, name) {
                user.groups.push(GroupRef {
                    id: GroupId(id),
                    name,
                });
            }
        }
        if !user.active || tenant.status != TenantStatus::Active {
            return Ok(None);
        }
        Ok(Some(Principal(Arc::new(PrincipalData {
            session_id: SessionId(s.id),
            token_hash: s.token_hash,
            user,
            tenant,
            expires_at: s.expires_at,
            created_at: s.created_at,
            auth: gatehouse_domain::oidc::AuthContext::from_text(
                s.amr.as_deref(),
                s.mfa_verified_at.is_some(),
            ),
            mfa_verified_at: s.mfa_verified_at,
            last_seen: AtomicI64::new(s.last_seen_at.timestamp()),
        }))))
    }

    /// Ends the session `p` in `txn`; its cached entry is dropped now and again by
    /// [`Store::forget_session`] once `txn` has committed.
    pub async fn end_session(&self, txn: &crate::WriteTxn, p: &Principal) -> Result<()> {
        let now = self.inner.clock.now();
        self.inner.cache.invalidate(&p.token_hash);
        sessions::Entity::update_many()
            .col_expr(
                sessions::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(sessions::Column::TenantId.eq(p.tenant.id.0))
            .filter(sessions::Column::Id.eq(p.session_id.0))
            .exec(&**txn)
            .await?;
        Ok(())
    }

    /// Whether a session still stands behind what was issued in it (OpenID Connect tokens):
    /// not ended, within its absolute life. The idle timeout is the browser's, not theirs.
    pub async fn session_live(&self, tenant: TenantId, session: SessionId) -> Result<bool> {
        let now = self.inner.clock.now();
        Ok(sessions::Entity::find_by_id(session.0)
            .filter(sessions::Column::TenantId.eq(tenant.0))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(now))
            .one(&self.inner.db)
            .await?
            .is_some())
    }

    /// Drops the cached entry of the session `p`: a concurrent miss may have re-filled it
    /// before its end committed.
    pub fn forget_session(&self, p: &Principal) {
        self.inner.cache.invalidate(&p.token_hash);
    }

    /// Drops the cached sessions of a user, after their sessions were revoked or the user
    /// changed: the next request of each reads the user again.
    pub fn forget_user_sessions(&self, user: UserId) {
        self.inner.cache.invalidate_user(user);
    }

    /// Drops cached sessions of a whole tenant, in every process sharing invalidations,
    /// after its sessions were revoked or its state changed.
    pub fn forget_tenant_sessions(&self, tenant: gatehouse_domain::ids::TenantId) {
        self.inner.cache.invalidate_tenant(tenant);
    }

    /// Records a second factor proven in this session (`mfa_verified_at`, M11); the
    /// session's count of wrong codes starts again.
    pub async fn mark_session_verified(&self, p: &Principal) -> Result<()> {
        let turn = self.inner.write_turn().await;
        sessions::Entity::update_many()
            .col_expr(
                sessions::Column::MfaVerifiedAt,
                sea_orm::sea_query::Expr::value(Some(self.inner.clock.now())),
            )
            .col_expr(
                sessions::Column::MfaFailures,
                sea_orm::sea_query::Expr::value(0),
            )
            .filter(sessions::Column::Id.eq(p.session_id.0))
            .filter(sessions::Column::TenantId.eq(p.tenant.id.0))
            .exec(&self.inner.db)
            .await?;
        drop(turn);
        self.inner.cache.invalidate(&p.token_hash);
        Ok(())
    }
}
