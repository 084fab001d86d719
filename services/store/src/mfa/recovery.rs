//! Recovery codes (M6): replaced as a set, stored as keyed hashes, each consumed by one
//! conditional UPDATE so that a code works exactly once even when raced.

use super::Mfa;
use crate::Result;
use crate::entities::recovery_codes as rc;
use gatehouse_domain::ids::UserId;
use gatehouse_domain::mfa::recovery;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

impl Mfa<'_> {
    /// Replaces the user's recovery codes with a fresh set and returns them, shown once.
    pub async fn replace_recovery_codes(&self, user: UserId) -> Result<Vec<String>> {
        let codes = recovery::generate(&mut rand::rngs::OsRng);
        let key = self.scope.inner.config.keyring.current();
        let now = self.scope.inner.clock.now();
        let rows: Vec<rc::ActiveModel> = codes
            .iter()
            .filter_map(|c| recovery::normalize(c))
            .map(|n| rc::ActiveModel {
                id: Set(Uuid::new_v4()),
                tenant_id: Set(self.scope.uuid()),
                user_id: Set(user.0),
                code_hash: Set(recovery::keyed_hash(key, user.0, &n)),
                used_at: Set(None),
                created_at: Set(now),
            })
            .collect();
        let txn = self.scope.inner.begin_write().await?;
        rc::Entity::delete_many()
            .filter(rc::Column::TenantId.eq(self.scope.uuid()))
            .filter(rc::Column::UserId.eq(user.0))
            .exec(&txn)
            .await?;
        rc::Entity::insert_many(rows)
            .exec_without_returning(&txn)
            .await?;
        txn.commit().await?;
        Ok(codes)
    }

    /// Uses a recovery code: `true` exactly once per code.
    pub async fn use_recovery_code(&self, user: UserId, input: &str) -> Result<bool> {
        let Some(normalized) = recovery::normalize(input) else {
            return Ok(false);
        };
        // Codes issued before a key rotation were hashed under a retired key: they match
        // under any configured key, as one-time codes do.
        let hashes: Vec<String> = self
            .scope
            .inner
            .config
            .keyring
            .keys()
            .map(|k| recovery::keyed_hash(k, user.0, &normalized))
            .collect();
        let _turn = self.scope.inner.write_turn().await;
        let changed = rc::Entity::update_many()
            .col_expr(
                rc::Column::UsedAt,
                Expr::value(Some(self.scope.inner.clock.now())),
            )
            .filter(rc::Column::TenantId.eq(self.scope.uuid()))
            .filter(rc::Column::UserId.eq(user.0))
            .filter(rc::Column::CodeHash.is_in(hashes))
            .filter(rc::Column::UsedAt.is_null())
            .exec(&self.scope.inner.db)
            .await?
            .rows_affected;
        Ok(changed >= 1)
    }

    /// Unused recovery codes of the user (M12).
    pub async fn recovery_codes_remaining(&self, user: UserId) -> Result<u32> {
        let n = rc::Entity::find()
            .filter(rc::Column::TenantId.eq(self.scope.uuid()))
            .filter(rc::Column::UserId.eq(user.0))
            .filter(rc::Column::UsedAt.is_null())
            .count(&self.scope.inner.db)
            .await?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// Removes all of the user's recovery codes (MFA reset).
    pub async fn remove_recovery_codes(&self, user: UserId) -> Result<u64> {
        let _turn = self.scope.inner.write_turn().await;
        Ok(rc::Entity::delete_many()
            .filter(rc::Column::TenantId.eq(self.scope.uuid()))
            .filter(rc::Column::UserId.eq(user.0))
            .exec(&self.scope.inner.db)
            .await?
            .rows_affected)
    }
}
