//! Reads that decide nothing: a practice's users, groups, audit log and trusted networks,
//! the list of practices, a number's opt-out state, and the session check every request
//! makes. The practice's scope (its tenant id in every query) is the authorisation; the
//! adapters' extractors have settled who may read which practice before they get here.
//! They are here so that the adapters call the use-case layer and nothing else: no
//! handler holds the store.

use crate::{Page, Principal, Result, Store, Tenant};
use gatehouse_domain::audit::ChainedEvent;
use gatehouse_domain::ids::{CompanyId, GroupId, PhoneE164, TenantId};
use gatehouse_domain::login_hours::LoginWindow;
use gatehouse_domain::session::SessionPolicy;
use gatehouse_store::audit::{AuditFilter, ChainReport};
use gatehouse_store::delivery_log::DeliveryRecord;
use gatehouse_store::mfa::TrustedNetwork;
use gatehouse_store::optouts::PhoneOptOut;
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::UserFilter;
use gatehouse_store::{Group, User};
use secrecy::SecretString;

/// One practice's records.
#[derive(Debug)]
pub struct Records<'a> {
    pub(crate) store: &'a Store,
    pub(crate) tenant: TenantId,
}

impl Records<'_> {
    /// `GET .../users`: a page of users in username order.
    pub async fn users(
        &self,
        filter: &UserFilter,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        let users = self.store.tenant(self.tenant).users();
        users.list(filter, limit, cursor).await
    }

    /// `GET .../users/{user_id}`, `GET /v1/me`: one user, or `NotFound`.
    pub async fn user(&self, user: &UserRef) -> Result<User> {
        self.store.tenant(self.tenant).users().get(user).await
    }

    /// `GET .../users/{user_id}/login-hours`.
    pub async fn login_hours(&self, user: &UserRef) -> Result<Vec<LoginWindow>> {
        self.store
            .tenant(self.tenant)
            .users()
            .login_hours(user)
            .await
    }

    /// `GET .../groups`: a page of groups in name order.
    pub async fn groups(&self, limit: u64, cursor: Option<&str>) -> Result<Page<Group>> {
        self.store
            .tenant(self.tenant)
            .groups()
            .list(limit, cursor)
            .await
    }

    /// `GET .../groups/{group_id}/members`: a page of the group's users.
    pub async fn group_members(
        &self,
        group: GroupId,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        let groups = self.store.tenant(self.tenant).groups();
        groups.members(group, limit, cursor).await
    }

    /// `GET .../audit-events`: a page of the practice's log, newest first.
    pub async fn audit(
        &self,
        filter: &AuditFilter,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<ChainedEvent>> {
        let log = self.store.tenant(self.tenant).audit();
        log.list(filter, limit, cursor).await
    }

    /// `GET .../audit-events/verify`: walks the practice's hash chain (A1).
    pub async fn verify_audit(&self) -> Result<ChainReport> {
        self.store.tenant(self.tenant).audit().verify().await
    }

    /// `GET .../users/{user_id}/deliveries`: a page of the codes and notices sent to a
    /// user, newest first.
    pub async fn deliveries_of(
        &self,
        user: &UserRef,
        limit: u64,
        cursor: Option<uuid::Uuid>,
    ) -> Result<Page<DeliveryRecord>> {
        let deliveries = self.store.tenant(self.tenant).deliveries();
        deliveries.for_user(user, limit, cursor).await
    }

    /// `GET .../trusted-networks`.
    pub async fn networks(&self) -> Result<Vec<TrustedNetwork>> {
        self.store.tenant(self.tenant).mfa().networks().await
    }
}

/// Reads outside one practice, and the session check.
#[derive(Debug)]
pub struct Deployment<'a> {
    pub(crate) store: &'a Store,
}

impl Deployment<'_> {
    /// The signed-in caller behind a session token (T3: live, not idle, not ended), from
    /// the session cache when it can.
    pub async fn authenticate(&self, token: &SecretString) -> Result<Principal> {
        self.store.authenticate(token).await
    }

    /// The practice (or operator tenant) with `company`.
    pub async fn tenant(&self, company: &CompanyId) -> Result<Option<Tenant>> {
        self.store.find_tenant(company).await
    }

    /// `GET /v1/tenants`: a page of practices in company order.
    pub async fn tenants(&self, limit: u64, cursor: Option<&str>) -> Result<Page<Tenant>> {
        self.store.list_tenants(limit, cursor).await
    }

    /// Whether `phone` texted STOP (D3), as last heard.
    pub async fn phone_opt_out(&self, phone: &PhoneE164) -> Result<Option<PhoneOptOut>> {
        self.store.phone_opt_out(phone).await
    }

    /// How long sessions live (T3), as this deployment is configured.
    pub fn session_policy(&self) -> SessionPolicy {
        self.store.config().session_policy
    }

    /// Whether the database answers (`/readyz`).
    pub async fn ping(&self) -> Result<()> {
        self.store.ping().await
    }
}
