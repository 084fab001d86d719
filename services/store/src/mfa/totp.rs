//! Authenticator secrets (M5): sealed at rest with the key id, enabled only after a proven
//! code, and a step accepted at most once even under concurrent requests: the last accepted
//! step is advanced by one conditional UPDATE, so of two requests with the same code
//! exactly one changes the row.

use super::Mfa;
use crate::Result;
use crate::entities::totp_credentials as tc;
use crate::error::StoreError;
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::UserId;
use gatehouse_domain::mfa::totp::{Enrollment, TotpSecret};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter};

fn context(user: UserId) -> Vec<u8> {
    [b"totp-secret:".as_slice(), user.0.as_bytes()].concat()
}

impl Mfa<'_> {
    fn row(&self, user: UserId) -> Condition {
        Condition::all()
            .add(tc::Column::TenantId.eq(self.scope.uuid()))
            .add(tc::Column::UserId.eq(user.0))
    }

    async fn credential(&self, user: UserId) -> Result<Option<tc::Model>> {
        Ok(tc::Entity::find()
            .filter(self.row(user))
            .one(&self.scope.inner.db)
            .await?)
    }

    fn secret_of(&self, user: UserId, row: &tc::Model) -> Result<TotpSecret> {
        let bytes = self
            .scope
            .inner
            .config
            .keyring
            .open(&context(user), &row.secret_sealed)
            .map_err(|e| StoreError::Corrupt(format!("TOTP secret of {user}: {e}")))?;
        Ok(TotpSecret::from_bytes(bytes))
    }

    /// Whether the user has a confirmed authenticator.
    pub async fn totp_enrolled(&self, user: UserId) -> Result<bool> {
        Ok(self.credential(user).await?.is_some_and(|c| c.confirmed))
    }

    /// Starts (or restarts) enrollment: a new secret, pending until a code proves it.
    /// A confirmed authenticator must be removed (MFA reset) before another is enrolled.
    pub async fn start_totp(&self, user: UserId, issuer: &str, label: &str) -> Result<Enrollment> {
        if self.totp_enrolled(user).await? {
            return Err(DomainError::Conflict(
                "an authenticator is already enrolled; reset MFA to change apps".into(),
            )
            .into());
        }
        let secret = TotpSecret::generate(&mut rand::rngs::OsRng);
        let enrollment = secret.enrollment(issuer, label)?;
        let key = self.scope.inner.config.keyring.current();
        let now = self.scope.inner.clock.now();
        let row = tc::ActiveModel {
            user_id: Set(user.0),
            tenant_id: Set(self.scope.uuid()),
            secret_sealed: Set(key.seal(&context(user), secret.expose_bytes())),
            key_id: Set(key.id().to_owned()),
            label: Set(label.to_owned()),
            confirmed: Set(false),
            last_step: Set(None),
            created_at: Set(now),
            confirmed_at: Set(None),
        };
        let txn = self.scope.inner.begin_write().await?;
        tc::Entity::delete_many()
            .filter(self.row(user))
            .filter(tc::Column::Confirmed.eq(false))
            .exec(&txn)
            .await?;
        tc::Entity::insert(row)
            .exec_without_returning(&txn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    DomainError::Conflict("another enrollment of this user is under way".into())
                        .into()
                } else {
                    StoreError::from(e)
                }
            })?;
        txn.commit().await?;
        Ok(enrollment)
    }

    /// Checks a code against the user's authenticator at `unix_time` and, if it matches a
    /// step newer than any accepted before, records that step. With `confirm`, the pending
    /// enrollment is the one checked and is enabled by success.
    async fn accept_step(
        &self,
        user: UserId,
        code: &str,
        unix_time: u64,
        confirm: bool,
    ) -> Result<bool> {
        let Some(row) = self.credential(user).await? else {
            return Err(DomainError::NotFound.into());
        };
        if row.confirmed == confirm {
            return Err(DomainError::FlowWrongStep.into());
        }
        let secret = self.secret_of(user, &row)?;
        let Some(step) = secret.matching_step(code, unix_time) else {
            return Ok(false);
        };
        let step =
            i64::try_from(step).map_err(|_| StoreError::Internal("TOTP step overflow".into()))?;
        let now = self.scope.inner.clock.now();
        let mut update = tc::Entity::update_many()
            .col_expr(tc::Column::LastStep, Expr::value(Some(step)))
            .filter(self.row(user))
            .filter(tc::Column::Confirmed.eq(!confirm))
            .filter(
                Condition::any()
                    .add(tc::Column::LastStep.is_null())
                    .add(Expr::col(tc::Column::LastStep).lt(step)),
            );
        if confirm {
            update = update
                .col_expr(tc::Column::Confirmed, Expr::value(true))
                .col_expr(tc::Column::ConfirmedAt, Expr::value(Some(now)));
        }
        let _turn = self.scope.inner.write_turn().await;
        let changed = update.exec(&self.scope.inner.db).await?.rows_affected;
        Ok(changed == 1)
    }

    /// Completes enrollment with a code from the app; `false` for a wrong or reused code.
    pub async fn confirm_totp(&self, user: UserId, code: &str, unix_time: u64) -> Result<bool> {
        self.accept_step(user, code, unix_time, true).await
    }

    /// Verifies a sign-in or step-up code; `false` for a wrong code or a step already used.
    pub async fn verify_totp(&self, user: UserId, code: &str, unix_time: u64) -> Result<bool> {
        self.accept_step(user, code, unix_time, false).await
    }

    /// Removes the user's authenticator (MFA reset, or the user switching apps).
    pub async fn remove_totp(&self, user: UserId) -> Result<bool> {
        let _turn = self.scope.inner.write_turn().await;
        let r = tc::Entity::delete_many()
            .filter(self.row(user))
            .exec(&self.scope.inner.db)
            .await?;
        Ok(r.rows_affected > 0)
    }
}
