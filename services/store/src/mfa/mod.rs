//! Second-factor credentials of one tenant's users: authenticator secrets, recovery codes,
//! remembered devices and trusted networks. Every query carries the tenant id.
//!
//! The sign-in flow and the admin and self-service endpoints are built on these.

mod challenges;
mod devices;
mod networks;
mod recovery;
mod totp;

pub use challenges::{CheckedCode, CodeOwner, CodeRequest, Destination, IssuedCode};
pub use devices::Device;
pub use networks::TrustedNetwork;

use crate::records::User;
use crate::scope::TenantScope;
use crate::sql::stmt;
use crate::{Result, StoreError};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::{EmailAddress, PhoneE164, UserId};
use gatehouse_domain::mfa::codes::Channel;
use sea_orm::ConnectionTrait;

/// One tenant's second-factor credentials.
pub struct Mfa<'a> {
    pub(crate) scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This tenant's second-factor credentials.
    pub fn mfa(self) -> Mfa<'a> {
        Mfa { scope: self }
    }
}

impl Mfa<'_> {
    /// Whether the user has a confirmed authenticator, and how many unused recovery codes
    /// are left, in one read: what every sign-in step decides on (see
    /// [`Mfa::totp_enrolled`], [`Mfa::recovery_codes_remaining`]).
    pub async fn second_factors(&self, user: UserId) -> Result<(bool, u32)> {
        let db = &self.scope.inner.db;
        let row = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "SELECT \
                 (SELECT COUNT(*) FROM totp_credentials \
                  WHERE tenant_id = $1 AND user_id = $2 AND confirmed = $3) AS totp, \
                 (SELECT COUNT(*) FROM recovery_codes \
                  WHERE tenant_id = $1 AND user_id = $2 AND used_at IS NULL) AS recovery",
                vec![self.scope.uuid().into(), user.0.into(), true.into()],
            ))
            .await?
            .ok_or_else(|| StoreError::Internal("a SELECT without FROM answered no row".into()))?;
        let totp: i64 = row.try_get("", "totp")?;
        let recovery: i64 = row.try_get("", "recovery")?;
        Ok((totp > 0, u32::try_from(recovery).unwrap_or(u32::MAX)))
    }
}

/// The user's own address for `channel`, as a destination; with `verified`, only a proven one (M10).
pub fn own_destination(user: &User, channel: Channel, verified: bool) -> Result<Destination> {
    let (value, proven, what) = match channel {
        Channel::Email => (user.email.as_deref(), user.email_verified, "email address"),
        Channel::Sms => (user.phone.as_deref(), user.phone_verified, "phone number"),
    };
    let Some(value) = value else {
        return Err(DomainError::NoDestination(format!(
            "This account has no {what}; add one first or ask the practice administrator."
        ))
        .into());
    };
    if verified && !proven {
        return Err(DomainError::DestinationUnverified(format!(
            "This {what} has not been verified yet; enroll it to verify it."
        ))
        .into());
    }
    parse_destination(channel, value, "destination")
        .map_err(|_| StoreError::Corrupt(format!("user {}: {what}", user.id)))
}

/// Parses a submitted destination for `channel`.
pub fn parse_destination(channel: Channel, raw: &str, field: &str) -> Result<Destination> {
    let d = match channel {
        Channel::Email => EmailAddress::parse(raw).map(Destination::Email),
        Channel::Sms => PhoneE164::parse(raw).map(Destination::Sms),
    };
    d.map_err(|e| match e {
        DomainError::Validation(mut errs) => {
            for f in &mut errs {
                f.field = field.to_owned();
            }
            DomainError::Validation(errs).into()
        }
        other => other.into(),
    })
}
