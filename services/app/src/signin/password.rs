//! The password step (P1-P5): `POST /v1/auth/login`, and the temporary password's
//! replacement (`POST /v1/auth/flows/{flow_id}/password`).
//!
//! Unknown company, unknown user and wrong password give the same error after the same
//! work (a dummy Argon2 verify stands in for the missing hash). Inactive users and
//! suspended practices are only told so after the right password, so those answers
//! leak nothing to someone guessing.

use super::ensure_active;
use super::{Advance, FlowView, SignIn};
use crate::passwords::{count_failure, replace_password};
use crate::{Error, RequestMeta, Result};
use gatehouse_domain::audit::details::{Refusal, SigninFailure};
use gatehouse_domain::audit::{Actor, Details};
use gatehouse_domain::ids::{CompanyId, FlowId, Username};
use gatehouse_domain::login_hours::{AllowedHours, is_allowed};
use gatehouse_domain::mfa::flow::FlowState;
use gatehouse_domain::mfa::step::Bypass;
use gatehouse_domain::password::{Verified, check_policy};
use gatehouse_domain::signin::FlowStatus;
use gatehouse_domain::{Error as DomainError, FieldError};
use gatehouse_store::User;
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::scope::TenantScope;
use gatehouse_store::signin::LoginUser;
use gatehouse_store::tries::Taken;
use gatehouse_store::users::PasswordVia;
use secrecy::SecretString;

/// `POST /v1/auth/login` as submitted.
#[derive(Debug)]
pub struct LoginInput {
    pub company: String,
    pub username: String,
    pub password: SecretString,
    pub device_token: Option<SecretString>,
    /// The client asked for a second factor (OpenID Connect `acr_values`): no trusted
    /// network or remembered device stands in for it.
    pub require_second_factor: bool,
}

impl SignIn<'_> {
    /// `POST /v1/auth/login`. The attempt is taken from the client's allowance before the
    /// password is checked (see `gatehouse_store::ratelimit`); a wrong password, unknown
    /// user or unknown company keeps it.
    #[tracing::instrument(skip_all, fields(company = %input.company))]
    pub async fn login(&self, input: LoginInput, meta: &RequestMeta) -> Result<FlowView> {
        let attempt =
            match meta.ip {
                Some(ip) => {
                    Some(self.store.login_limiter().begin(ip).await.map_err(
                        |retry_after_secs| DomainError::RateLimited { retry_after_secs },
                    )?)
                }
                None => None,
            };
        let result = self.login_checked(input, meta).await;
        if let (Err(Error::Domain(DomainError::InvalidCredentials)), Some(a)) = (&result, attempt) {
            a.failed().await;
        }
        result
    }

    async fn login_checked(&self, input: LoginInput, meta: &RequestMeta) -> Result<FlowView> {
        let (Ok(company), Ok(username)) = (
            CompanyId::parse(&input.company),
            Username::parse(&input.username),
        ) else {
            self.store.verify_nobody(input.password).await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        let Some((tenant, found)) = self.store.load_for_login(&company, &username).await? else {
            self.store.verify_nobody(input.password).await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        gatehouse_store::telemetry::record_tenant(tenant.id);
        let scope = self.store.tenant(tenant.id);
        let Some(LoginUser {
            user,
            password_hash,
            hints,
        }) = found
        else {
            self.store.verify_nobody(input.password).await?;
            scope
                .audit()
                .record(event(
                    Actor::anonymous(),
                    None,
                    meta,
                    // Not the typed username: it is sometimes a password typed into the wrong box.
                    Details::signin_failed(SigninFailure::UnknownUser, None),
                ))
                .await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        // The try is taken before the password is checked (P4): concurrent guesses are
        // judged one by one, and none is checked once the lock is reached.
        let threshold = tenant.settings.lockout_threshold;
        let taken = scope.tries().take_password(user.id.0, threshold).await?;
        let target = Some(user_target(user.id, &user.username));
        match taken {
            Taken::Yes(_) => {}
            Taken::Full => {
                // Tries still held by guesses in flight after waiting for them.
                return Err(DomainError::RateLimited {
                    retry_after_secs: 1,
                }
                .into());
            }
            Taken::Locked => {
                // A lock is revealed only to the right password, like an inactive account;
                // a wrong one answers what an unknown user gets, and counts nothing more.
                let verified = self
                    .store
                    .verify_password(password_hash, input.password)
                    .await?;
                let (details, err) = match verified {
                    Verified::Yes { .. } => (
                        Details::SigninRefused {
                            reason: Refusal::Locked,
                        },
                        DomainError::AccountLocked,
                    ),
                    Verified::No => (
                        Details::signin_failed(SigninFailure::WrongPasswordWhileLocked, None),
                        DomainError::InvalidCredentials,
                    ),
                };
                scope
                    .audit()
                    .record(event(actor_user(&user), target, meta, details))
                    .await?;
                return Err(err.into());
            }
        };
        let verified = self
            .store
            .verify_password(password_hash, input.password.clone())
            .await;
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                scope.tries().password_release(user.id.0).await?;
                return Err(e);
            }
        };
        let Verified::Yes { rehash } = verified else {
            let failure = (threshold, &user);
            return Err(count_failure(
                self.store,
                scope,
                failure,
                meta,
                SigninFailure::WrongPassword,
            )
            .await);
        };
        // Guesses checked beside this one are judged first: a lock they reach wins
        // (the flow below is only created for a user who is not locked).
        scope.tries().password_right(user.id.0).await?;
        let refusal = ensure_active(&tenant)
            .err()
            .or_else(|| (!user.active).then_some(DomainError::AccountInactive));
        let refusal = match refusal {
            Some(r) => Some(r),
            None if hints.login_hours => {
                let windows = scope.users().windows(user.id).await?;
                let allowed = is_allowed(&windows, tenant.timezone, self.store.clock().now());
                (!allowed).then_some(DomainError::OutsideLoginHours(AllowedHours {
                    windows,
                    timezone: tenant.timezone,
                }))
            }
            // No hours: any time is allowed.
            None => None,
        };
        if let Some(r) = refusal {
            let reason = match r {
                DomainError::TenantSuspended => Refusal::TenantSuspended,
                DomainError::AccountInactive => Refusal::Inactive,
                _ => Refusal::OutsideLoginHours,
            };
            scope
                .audit()
                .record(event(
                    actor_user(&user),
                    target,
                    meta,
                    Details::SigninRefused { reason },
                ))
                .await?;
            return Err(r.into());
        }
        let new_hash = if rehash {
            Some(self.store.hash_password(input.password).await?)
        } else {
            None
        };
        let bypass = if input.require_second_factor {
            None
        } else {
            find_bypass(
                scope,
                &user,
                input.device_token.as_ref(),
                hints.trusted_networks,
                meta,
            )
            .await?
        };
        self.advance(
            Advance {
                tenant: &tenant,
                user: &user,
                flow: None,
                state: FlowState {
                    bypass,
                    ..FlowState::default()
                },
                password_pending: user.must_change_password,
                new_hash,
                events: Vec::new(),
            },
            meta,
        )
        .await
    }

    /// `POST /v1/auth/flows/{flow_id}/password`: replaces a temporary password (P3).
    pub async fn change_password(
        &self,
        id: FlowId,
        new_password: SecretString,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        if flow.status != FlowStatus::PasswordChangeRequired {
            return Err(DomainError::FlowWrongStep.into());
        }
        check_policy(
            &tenant.settings.password_policy,
            "new_password",
            &new_password,
            &user.username,
        )?;
        let scope = self.store.tenant(tenant.id);
        let current = scope.users().password_hash(user.id).await?;
        let same = self
            .store
            .verify_password(current, new_password.clone())
            .await?;
        if matches!(same, Verified::Yes { .. }) {
            return Err(DomainError::PasswordPolicy(vec![FieldError::rule(
                "new_password",
                "reused",
                "must differ from the temporary password",
            )])
            .into());
        }
        let hash = self.store.hash_password(new_password).await?;
        replace_password(
            self.store,
            (tenant.id, user.id, &user.username),
            hash,
            None,
            (actor_user(&user), PasswordVia::SignInFlow),
            meta,
        )
        .await?;
        let state = flow.state.clone();
        self.advance(
            Advance::of((&flow, &user, &tenant), state, Vec::new()),
            meta,
        )
        .await
    }
}

/// A remembered device of this very user, else a trusted network (M7, M8); the networks
/// are read only if `networks` says some may apply.
async fn find_bypass(
    scope: TenantScope<'_>,
    user: &User,
    device_token: Option<&SecretString>,
    networks: bool,
    meta: &RequestMeta,
) -> Result<Option<Bypass>> {
    if let Some(t) = device_token
        && scope.mfa().device_trusted(user.id, t).await?
    {
        return Ok(Some(Bypass::RememberedDevice));
    }
    if networks && scope.mfa().from_trusted_network(user.id, meta.ip).await? {
        return Ok(Some(Bypass::TrustedNetwork));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A typed password or a remembered device's token never reaches a log through
    /// `Debug`; the company (the span's field) does.
    #[test]
    fn p1_a_submitted_password_stays_out_of_debug_output() {
        let input = LoginInput {
            company: "riverside".into(),
            username: "frontdesk".into(),
            password: SecretString::from("Granite-Bridge-2026!".to_owned()),
            device_token: Some(SecretString::from("device-token-secret".to_owned())),
            require_second_factor: false,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("Granite-Bridge-2026!"), "{shown}");
        assert!(!shown.contains("device-token-secret"), "{shown}");
        assert!(shown.contains("riverside"), "{shown}");
    }
}
