//! A practice admin's hand on second factors: a user's method and enrollment mode, the
//! reset after a lost phone (M9), remembered devices, and trusted networks (M8). Each
//! weakening of a defence asks the admin for a step-up (M11).

use super::{Mfa, check_method};
use crate::{Principal, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::{MfaReset, Network, UserUpdate};
use gatehouse_domain::audit::{Actor, Details};
use gatehouse_domain::ids::{TenantId, UserId};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::networks::Cidr;
use gatehouse_store::User;
use gatehouse_store::audit::{actor_of, event, user_target};
use gatehouse_store::mfa::{Device, TrustedNetwork};
use gatehouse_store::scope::UserRef;
use std::net::IpAddr;
use uuid::Uuid;

/// A trusted network as an admin submits it.
#[derive(Debug, Default)]
pub struct NewNetwork {
    pub cidr: Option<String>,
    pub my_ip: bool,
    pub description: Option<String>,
    pub user_id: Option<Uuid>,
}

impl Mfa<'_> {
    /// The user's live remembered devices.
    pub async fn devices_of(&self, tenant: TenantId, user: &UserRef) -> Result<Vec<Device>> {
        let scope = self.store.tenant(tenant);
        let u = scope.users().get(user).await?;
        scope.mfa().devices(u.id).await
    }

    /// Revokes one remembered device of `user` (by the user or an admin).
    pub async fn revoke_device_of(
        &self,
        actor: &Principal,
        (tenant, user): (TenantId, &UserRef),
        device: Uuid,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.store.tenant(tenant);
        let u = scope.users().get(user).await?;
        scope.mfa().revoke_device(u.id, device).await?;
        scope
            .audit()
            .record(event(
                actor_of(actor),
                Some(user_target(u.id, &u.username)),
                meta,
                Details::DeviceRevoked { device_id: device },
            ))
            .await
    }

    /// `PUT .../users/{user_id}/mfa`: an admin sets a user's method and enrollment mode.
    pub async fn set_user_mfa(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        (method, enrollment): (UserMethod, Enrollment),
        meta: &RequestMeta,
    ) -> Result<User> {
        crate::require_step_up(self.store, actor)?;
        let scope = self.store.tenant(tenant.id);
        let u = scope.users().get(user).await?;
        check_method(tenant, method)?;
        let txn = self.store.begin_write().await?;
        scope
            .users()
            .set_mfa(&txn, u.id, method, Some(enrollment))
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(actor),
                    Some(user_target(u.id, &u.username)),
                    meta,
                    Details::UserUpdated(UserUpdate::Mfa {
                        mfa_method: method,
                        mfa_enrollment: Some(enrollment),
                        by: None,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_user_sessions(u.id);
        scope.users().get(&UserRef::Id(u.id.0)).await
    }

    /// `DELETE .../users/{user_id}/mfa` (M9): removes the authenticator, recovery codes
    /// and remembered devices, takes the proof off the method's address, and forces
    /// enrollment at the next sign-in.
    pub async fn reset_user_mfa(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        crate::require_step_up(self.store, actor)?;
        self.reset_mfa_as(actor_of(actor), tenant, user, meta).await
    }

    /// The reset itself, by `actor` (an admin, or support through an escalation).
    pub(crate) async fn reset_mfa_as(
        &self,
        actor: Actor,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.store.tenant(tenant.id);
        let u = scope.users().get(user).await?;
        let mfa = scope.mfa();
        let had_totp = mfa.remove_totp(u.id).await?;
        let codes = mfa.remove_recovery_codes(u.id).await?;
        let txn = self.store.begin_write().await?;
        let devices = mfa.revoke_all_devices(&*txn, u.id).await?;
        scope.users().reset_mfa(&txn, u.id, u.mfa_method).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor,
                    Some(user_target(u.id, &u.username)),
                    meta,
                    Details::MfaReset(MfaReset::Everything {
                        method: u.mfa_method,
                        authenticator_removed: had_totp,
                        recovery_codes_removed: codes,
                        devices_revoked: devices,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_user_sessions(u.id);
        Ok(())
    }

    /// `POST .../trusted-networks`: adds a range (or the caller's own address).
    pub async fn add_trusted_network(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        new: NewNetwork,
        meta: &RequestMeta,
    ) -> Result<TrustedNetwork> {
        // A trusted network skips the second factor: it weakens a defence (M11).
        crate::require_step_up(self.store, actor)?;
        let cidr = match (new.cidr.as_deref().map(str::trim), new.my_ip) {
            (Some(c), false) if !c.is_empty() => Cidr::parse(c)?,
            (None, true) => {
                let ip: IpAddr = meta.ip.ok_or_else(|| {
                    DomainError::field("my_ip", "the client address is not known")
                })?;
                Cidr::host(ip)
            }
            _ => {
                return Err(DomainError::field("cidr", "give either cidr or my_ip: true").into());
            }
        };
        if let Some(d) = &new.description
            && (d.chars().count() > 200 || d.chars().any(char::is_control))
        {
            return Err(DomainError::field(
                "description",
                "description must be at most 200 characters, without control characters",
            )
            .into());
        }
        let scope = self.store.tenant(tenant.id);
        let n = scope
            .mfa()
            .add_network(
                cidr,
                new.description,
                new.user_id.map(UserId),
                Some(actor.user.id),
            )
            .await?;
        scope
            .audit()
            .record(event(
                actor_of(actor),
                None,
                meta,
                Details::NetworkAdded(network_facts(&n)),
            ))
            .await?;
        Ok(n)
    }

    /// `DELETE .../trusted-networks/{id}`.
    pub async fn remove_trusted_network(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.store.tenant(tenant.id);
        let n = scope.mfa().remove_network(id).await?;
        scope
            .audit()
            .record(event(
                actor_of(actor),
                None,
                meta,
                Details::NetworkRemoved(network_facts(&n)),
            ))
            .await
    }
}

/// A trusted network as its audit events record it.
fn network_facts(n: &TrustedNetwork) -> Network {
    Network {
        id: n.id,
        cidr: n.cidr.to_string(),
        user_id: n.user_id,
    }
}
