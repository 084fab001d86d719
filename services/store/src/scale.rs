//! Scale data for the load tests (O3): many practices with many users, written in bulk so
//! that sign-in and session-check latency can be measured against a database the size of
//! a real deployment (10,000 practices, 500,000 users) rather than an empty one.
//!
//! Every user gets the same password, hashed once with the service's Argon2id parameters:
//! hashing 500,000 passwords one by one would take hours. Practices are written a batch at
//! a time, each batch in one transaction with multi-row INSERTs; an interrupted run leaves
//! whole batches, and a second run refuses to write over them.

use crate::entities::{tenants, users};
use crate::{Result, Store, StoreError};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::settings::{MfaPolicy, TenantSettings};
use sea_orm::{ActiveValue::Set, EntityTrait};
use secrecy::SecretString;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The most practices one run writes.
pub const MAX_TENANTS: u32 = 100_000;
/// The most users per practice one run writes.
pub const MAX_USERS_PER_TENANT: u32 = 1_000;
/// Practices per transaction.
const TENANTS_PER_BATCH: usize = 100;
/// Rows per INSERT: well under SQLite's and PostgreSQL's limits on bound values
/// (users have 22 columns).
const ROWS_PER_INSERT: usize = 1_000;

/// What to write.
#[derive(Debug)]
pub struct ScaleSpec {
    /// Company ids are `{prefix}-00001`, `{prefix}-00002`, ...
    pub prefix: String,
    pub tenants: u32,
    /// Per practice: `user-0000` is its practice admin, the others staff.
    pub users_per_tenant: u32,
    /// Every user's password.
    pub password: SecretString,
    /// Every practice's MFA policy.
    pub mfa_policy: MfaPolicy,
    /// Give users verified contacts and second factors ([`scale_method`]): the load
    /// tests' staff then sign in with codes sent by email and SMS, or enroll an
    /// authenticator at their first sign-in. Without it, no contact is verified and no
    /// method set.
    pub mfa_methods: bool,
}

/// What a run wrote, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleOutcome {
    pub tenants: u64,
    pub users: u64,
    /// The one Argon2id hash.
    pub hashing: Duration,
    /// Everything else.
    pub writing: Duration,
}

/// The company id of practice `n` (1-based).
pub fn scale_company(prefix: &str, n: u32) -> String {
    format!("{prefix}-{n:05}")
}

/// The username of user `n` (0-based) of a practice.
pub fn scale_username(n: u32) -> String {
    format!("user-{n:04}")
}

/// The email address of user `u` of the practice `company`.
pub fn scale_email(company: &str, u: u32) -> String {
    format!("{}@{company}.example.com", scale_username(u))
}

/// Area codes of the scale data's phone numbers (real ones: the numbers must parse as
/// valid North American numbers).
const AREA_CODES: [u32; 15] = [
    212, 213, 312, 415, 617, 202, 305, 404, 503, 602, 702, 713, 206, 303, 214,
];

/// The phone number (E.164) of user `u` of practice `n`: distinct for every practice
/// up to [`MAX_TENANTS`] and user up to [`MAX_USERS_PER_TENANT`].
pub fn scale_phone(n: u32, u: u32) -> String {
    let i = u64::from(n) * 1_000 + u64::from(u);
    let line = i % 10_000;
    let rest = i / 10_000;
    let exchange = 200 + rest % 700;
    let area = AREA_CODES[(rest / 700) as usize % AREA_CODES.len()];
    format!("+1{area}{exchange:03}{line:04}")
}

/// The second factor of user `u` with `mfa_methods`: half by email (the practice admin,
/// `user-0000`, among them), a quarter by SMS, a quarter none yet (they enroll an
/// authenticator app when the policy asks).
pub fn scale_method(u: u32) -> UserMethod {
    match u % 4 {
        0 | 1 => UserMethod::Email,
        2 => UserMethod::Sms,
        _ => UserMethod::None,
    }
}

impl Store {
    /// Writes `spec`'s practices and users; see the module docs. Refuses (409) when the
    /// first practice of the prefix already exists.
    pub async fn seed_scale(&self, spec: &ScaleSpec) -> Result<ScaleOutcome> {
        let mut errors = Vec::new();
        if spec.tenants == 0 || spec.tenants > MAX_TENANTS {
            errors.push(gatehouse_domain::FieldError::new(
                "tenants",
                format!("from 1 to {MAX_TENANTS}"),
            ));
        }
        if spec.users_per_tenant == 0 || spec.users_per_tenant > MAX_USERS_PER_TENANT {
            errors.push(gatehouse_domain::FieldError::new(
                "users_per_tenant",
                format!("from 1 to {MAX_USERS_PER_TENANT}"),
            ));
        }
        // The widest company id must be valid too.
        let first = CompanyId::parse(&scale_company(&spec.prefix, 1));
        let last = CompanyId::parse(&scale_company(&spec.prefix, spec.tenants.max(1)));
        if first.is_err() || last.is_err() {
            errors.push(gatehouse_domain::FieldError::new(
                "prefix",
                "'{prefix}-00001' and on must be valid company ids",
            ));
        }
        if !errors.is_empty() {
            return Err(DomainError::Validation(errors).into());
        }
        let first = first?;
        if first == self.inner.config.operator_company || self.find_tenant(&first).await?.is_some()
        {
            return Err(DomainError::Conflict(format!(
                "company id '{first}' is already taken: choose another prefix"
            ))
            .into());
        }
        let started = Instant::now();
        let hash = self.inner.hasher.hash(spec.password.clone()).await?;
        let hashing = started.elapsed();

        let settings = serde_json::to_string(&TenantSettings {
            mfa_policy: spec.mfa_policy,
            ..TenantSettings::default()
        })
        .map_err(|e| StoreError::Internal(e.to_string()))?;
        let started = Instant::now();
        let numbers: Vec<u32> = (1..=spec.tenants).collect();
        let mut written = (0u64, 0u64);
        for batch in numbers.chunks(TENANTS_PER_BATCH) {
            let now = self.inner.clock.now();
            let mut tenant_rows = Vec::with_capacity(batch.len());
            let mut user_rows = Vec::with_capacity(batch.len() * spec.users_per_tenant as usize);
            for &n in batch {
                let company = scale_company(&spec.prefix, n);
                let tenant_id = Uuid::new_v4();
                for u in 0..spec.users_per_tenant {
                    let username = scale_username(u);
                    let method = if spec.mfa_methods {
                        scale_method(u)
                    } else {
                        UserMethod::None
                    };
                    user_rows.push(users::ActiveModel {
                        id: Set(Uuid::new_v4()),
                        tenant_id: Set(tenant_id),
                        username_lower: Set(username.clone()),
                        email: Set(Some(scale_email(&company, u))),
                        username: Set(username),
                        first_name: Set("Load".to_owned()),
                        last_name: Set(format!("User {u}")),
                        email_verified: Set(spec.mfa_methods),
                        phone: Set(spec.mfa_methods.then(|| scale_phone(n, u))),
                        phone_verified: Set(spec.mfa_methods),
                        role: Set(if u == 0 { "practice_admin" } else { "staff" }.to_owned()),
                        active: Set(true),
                        locked: Set(false),
                        must_change_password: Set(false),
                        password_hash: Set(hash.clone()),
                        failed_logins: Set(0),
                        mfa_failures: Set(0),
                        login_tries: Set(0),
                        login_tries_at: Set(None),
                        mfa_method: Set(method.as_str().to_owned()),
                        mfa_enrollment: Set(Enrollment::NextLogin.as_str().to_owned()),
                        created_at: Set(now),
                        updated_at: Set(now),
                        last_login_at: Set(None),
                        password_changed_at: Set(Some(now)),
                        pending_approval: Set(false),
                        approval_requested_by: Set(None),
                    });
                }
                tenant_rows.push(tenants::ActiveModel {
                    id: Set(tenant_id),
                    name: Set(format!("Load Practice {n}")),
                    company: Set(company),
                    timezone: Set("America/New_York".to_owned()),
                    status: Set(crate::TenantStatus::Active.as_str().to_owned()),
                    settings: Set(settings.clone()),
                    is_operator: Set(false),
                    audit_head_seq: Set(0),
                    audit_head_hash: Set(gatehouse_domain::audit::GENESIS_HASH.to_owned()),
                    created_at: Set(now),
                    updated_at: Set(now),
                });
            }
            let (t, u) = (tenant_rows.len() as u64, user_rows.len() as u64);
            let txn = self.inner.begin_write().await?;
            tenants::Entity::insert_many(tenant_rows)
                .exec_without_returning(&txn)
                .await
                .map_err(|e| {
                    if StoreError::is_unique_violation(&e) {
                        DomainError::Conflict(format!(
                            "a company id of prefix '{}' is already taken: choose another prefix",
                            spec.prefix
                        ))
                        .into()
                    } else {
                        StoreError::from(e)
                    }
                })?;
            let mut rows = user_rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<users::ActiveModel> = rows.by_ref().take(ROWS_PER_INSERT).collect();
                users::Entity::insert_many(chunk)
                    .exec_without_returning(&txn)
                    .await?;
            }
            txn.commit().await?;
            written.0 += t;
            written.1 += u;
        }
        Ok(ScaleOutcome {
            tenants: written.0,
            users: written.1,
            hashing,
            writing: started.elapsed(),
        })
    }
}
