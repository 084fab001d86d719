//! The signed-in user's own account: changing their password (P1-P3).

use crate::passwords::{judge_own_password, own_hash, replace_password};
use crate::{Principal, RequestMeta, Result};
use gatehouse_domain::audit::details::SigninFailure;
use gatehouse_domain::password::{Verified, check_policy};
use gatehouse_domain::{Error as DomainError, FieldError};
use gatehouse_store::Store;
use gatehouse_store::audit::actor_of;
use gatehouse_store::users::PasswordVia;
use secrecy::SecretString;

/// The account use cases (from [`crate::App::account`]).
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    pub(crate) store: &'a Store,
}

impl Account<'_> {
    /// `POST /v1/me/password`: the user changes their own password. Their other sessions
    /// end.
    pub async fn change_password(
        &self,
        p: &Principal,
        current: SecretString,
        new: SecretString,
        meta: &RequestMeta,
    ) -> Result<()> {
        check_policy(
            &p.tenant.settings.password_policy,
            "new_password",
            &new,
            &p.user.username,
        )?;
        if !judge_own_password(
            self.store,
            p,
            current,
            meta,
            SigninFailure::WrongCurrentPassword,
        )
        .await?
        {
            return Err(DomainError::Validation(vec![FieldError::new(
                "current_password",
                "the current password is not correct",
            )])
            .into());
        }
        let scope = self.store.tenant(p.tenant.id);
        let hash = own_hash(scope, p).await?;
        if let Verified::Yes { .. } = self.store.verify_password(hash, new.clone()).await? {
            return Err(DomainError::PasswordPolicy(vec![FieldError::rule(
                "new_password",
                "reused",
                "must differ from the current password",
            )])
            .into());
        }
        let hash = self.store.hash_password(new).await?;
        replace_password(
            self.store,
            (p.tenant.id, p.user.id, &p.user.username),
            hash,
            Some(p.session_id),
            (actor_of(p), PasswordVia::SelfService),
            meta,
        )
        .await
    }
}
