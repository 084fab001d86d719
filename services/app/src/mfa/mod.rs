//! Second factors outside sign-in: the user's own (`/v1/me/...`: method, authenticator,
//! recovery codes, contacts, step-up), and an admin's (`.../users/{user_id}/mfa`,
//! remembered devices, trusted networks). Each change is audited without codes or
//! secrets.

mod admin;
pub(crate) mod codes;
mod self_service;
mod step_up;

use crate::{Principal, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::settings::{AllowedMethod, MfaPolicy};
use gatehouse_store::scope::UserRef;
use gatehouse_store::{Store, User};

pub use admin::NewNetwork;

/// The MFA use cases (from [`crate::App::mfa`]).
#[derive(Debug, Clone, Copy)]
pub struct Mfa<'a> {
    pub(crate) store: &'a Store,
}

fn allows(tenant: &Tenant, method: UserMethod) -> bool {
    let m = match method {
        UserMethod::None => return true,
        UserMethod::Email => AllowedMethod::Email,
        UserMethod::Sms => AllowedMethod::Sms,
        UserMethod::Totp => AllowedMethod::Totp,
    };
    tenant.settings.allowed_methods.contains(&m)
}

/// Whether the practice asks anything of its users' second factors (`suggest` or
/// `require`; the operator tenant always requires one).
fn requires_any_mfa(tenant: &Tenant) -> bool {
    tenant.is_operator || tenant.settings.mfa_policy != MfaPolicy::Off
}

fn requires_mfa(tenant: &Tenant) -> bool {
    tenant.is_operator || tenant.settings.mfa_policy == MfaPolicy::Require
}

/// Checks that `method` can be the user's method under the tenant's rules.
fn check_method(tenant: &Tenant, method: UserMethod) -> Result<()> {
    if !allows(tenant, method) {
        return Err(DomainError::MethodNotAllowed(format!(
            "This practice does not allow {}.",
            method.as_str()
        ))
        .into());
    }
    if method == UserMethod::None && requires_mfa(tenant) {
        return Err(DomainError::MethodNotAllowed(
            "This practice requires MFA; choose email, sms or totp.".into(),
        )
        .into());
    }
    Ok(())
}

fn require_self_service(p: &Principal) -> Result<()> {
    if p.tenant.settings.self_service_mfa {
        Ok(())
    } else {
        Err(DomainError::Forbidden(
            "This practice does not let users change their own MFA; ask the practice administrator."
                .into(),
        )
        .into())
    }
}

impl Mfa<'_> {
    /// The caller's record as it is now, with their second factors (no groups).
    async fn own_record(&self, p: &Principal) -> Result<User> {
        self.store
            .tenant(p.tenant.id)
            .users()
            .find(&UserRef::Id(p.user.id.0))
            .await?
            .ok_or_else(|| DomainError::Unauthenticated.into())
    }

    /// The caller's record with their groups, as `/v1/me` answers it.
    async fn own_user(&self, p: &Principal) -> Result<User> {
        self.store
            .tenant(p.tenant.id)
            .users()
            .get(&UserRef::Id(p.user.id.0))
            .await
    }
}
