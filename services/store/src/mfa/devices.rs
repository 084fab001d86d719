//! Remembered devices (M7): a random token per device and user, only its hash stored,
//! trusted until the tenant's remember period ends or it is revoked.

use super::Mfa;
use crate::Result;
use crate::entities::remembered_devices as rd;
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::devices::{hash_token, new_token, remembered_until};
use gatehouse_domain::ids::UserId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use secrecy::SecretString;
use uuid::Uuid;

/// A remembered device as its user and admins see it (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: Uuid,
    pub label: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl Mfa<'_> {
    /// Remembers the device for the user; `None` when the tenant disabled remembering.
    /// The token is returned once, to be stored by the client.
    pub async fn remember_device(
        &self,
        user: UserId,
        label: Option<String>,
        remember_hours: u32,
    ) -> Result<Option<(SecretString, DateTime<Utc>)>> {
        let now = self.scope.inner.clock.now();
        let Some(expires_at) = remembered_until(now, remember_hours) else {
            return Ok(None);
        };
        let token = new_token(&mut rand::rngs::OsRng);
        let row = rd::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(user.0),
            token_hash: Set(token.hash),
            label: Set(label.map(|l| l.chars().take(200).collect())),
            created_at: Set(now),
            expires_at: Set(expires_at),
            last_used_at: Set(None),
            revoked_at: Set(None),
        };
        let _turn = self.scope.inner.write_turn().await;
        rd::Entity::insert(row)
            .exec_without_returning(&self.scope.inner.db)
            .await?;
        Ok(Some((token.token, expires_at)))
    }

    /// Whether the token is a live remembered device of this very user; records its use.
    pub async fn device_trusted(&self, user: UserId, token: &SecretString) -> Result<bool> {
        let now = self.scope.inner.clock.now();
        let _turn = self.scope.inner.write_turn().await;
        let used = rd::Entity::update_many()
            .col_expr(rd::Column::LastUsedAt, Expr::value(Some(now)))
            .filter(rd::Column::TenantId.eq(self.scope.uuid()))
            .filter(rd::Column::UserId.eq(user.0))
            .filter(rd::Column::TokenHash.eq(hash_token(token)))
            .filter(rd::Column::RevokedAt.is_null())
            .filter(rd::Column::ExpiresAt.gt(now))
            .exec(&self.scope.inner.db)
            .await?
            .rows_affected;
        Ok(used == 1)
    }

    /// The user's live remembered devices, newest first.
    pub async fn devices(&self, user: UserId) -> Result<Vec<Device>> {
        let now = self.scope.inner.clock.now();
        let rows = rd::Entity::find()
            .filter(rd::Column::TenantId.eq(self.scope.uuid()))
            .filter(rd::Column::UserId.eq(user.0))
            .filter(rd::Column::RevokedAt.is_null())
            .filter(rd::Column::ExpiresAt.gt(now))
            .order_by_desc(rd::Column::CreatedAt)
            .all(&self.scope.inner.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| Device {
                id: r.id,
                label: r.label,
                created_at: r.created_at,
                expires_at: r.expires_at,
                last_used_at: r.last_used_at,
            })
            .collect())
    }

    /// Revokes one device of the user; `NotFound` if it is not theirs or already gone.
    pub async fn revoke_device(&self, user: UserId, device: Uuid) -> Result<()> {
        let _turn = self.scope.inner.write_turn().await;
        let revoked = rd::Entity::update_many()
            .col_expr(
                rd::Column::RevokedAt,
                Expr::value(Some(self.scope.inner.clock.now())),
            )
            .filter(rd::Column::TenantId.eq(self.scope.uuid()))
            .filter(rd::Column::UserId.eq(user.0))
            .filter(rd::Column::Id.eq(device))
            .filter(rd::Column::RevokedAt.is_null())
            .exec(&self.scope.inner.db)
            .await?
            .rows_affected;
        if revoked == 1 {
            Ok(())
        } else {
            Err(DomainError::NotFound.into())
        }
    }

    /// Revokes every live device of the user (deactivation, password reset, MFA reset);
    /// answers how many were still trusted.
    pub async fn revoke_all_devices<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
    ) -> Result<u64> {
        let now = self.scope.inner.clock.now();
        Ok(rd::Entity::update_many()
            .col_expr(rd::Column::RevokedAt, Expr::value(Some(now)))
            .filter(rd::Column::TenantId.eq(self.scope.uuid()))
            .filter(rd::Column::UserId.eq(user.0))
            .filter(rd::Column::RevokedAt.is_null())
            .filter(rd::Column::ExpiresAt.gt(now))
            .exec(conn)
            .await?
            .rows_affected)
    }
}
