//! Users of one tenant (T3): the repository the sign-in, MFA and administration use cases
//! of gatehouse-app write through, and the reads of the user list.

use crate::mfa::Destination;

use crate::Result;
use crate::entities::{group_members, groups, login_hours, users};
use crate::error::StoreError;
use crate::records::{GroupRef, Page, User};
use crate::scope::{TenantScope, UserRef};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::ids::{EmailAddress, GroupId, PhoneE164, UserId, Username};
use gatehouse_domain::login_hours::{LoginWindow, Weekday};
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::names::person_name;
use gatehouse_domain::password::check_policy;
use gatehouse_domain::role::Role;
use gatehouse_domain::settings::TenantSettings;
use gatehouse_domain::validation::{Collector, Given};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, JoinType, QueryFilter,
    QueryOrder, QuerySelect, RelationTrait,
};
use secrecy::SecretString;
use std::collections::HashMap;
use uuid::Uuid;

pub use gatehouse_domain::password::PasswordVia;

/// A new user as an admin submits it.
#[derive(Debug)]
pub struct NewUser {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Read at the edge (an unknown name is that field's error).
    pub role: Given<Role>,
    pub password: SecretString,
    pub groups: Vec<Uuid>,
}

/// Validated fields of a new user.
pub struct ParsedUser {
    pub username: Username,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<EmailAddress>,
    pub phone: Option<PhoneE164>,
    pub role: Role,
}

impl NewUser {
    /// Parses every field against the tenant's rules, reporting all problems at once.
    pub fn parse(&self, settings: &TenantSettings, is_operator: bool) -> Result<ParsedUser> {
        let mut c = Collector::new();
        let username = c.take(Username::parse(&self.username));
        let first_name = c.take(person_name("first_name", &self.first_name));
        let last_name = c.take(person_name("last_name", &self.last_name));
        let email = match self.email.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(e) => c.take(EmailAddress::parse(e)).map(Some),
        };
        let phone = match self.phone.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(p) => c.take(PhoneE164::parse(p)).map(Some),
        };
        let role = c
            .given(self.role.clone())
            .and_then(|r| c.take(r.check_for_tenant(is_operator)));
        let policy = check_policy(
            &settings.password_policy,
            "password",
            &self.password,
            username.as_ref().map_or("", |u| u.as_str()),
        );
        // Only password rules broken: answer `password_policy`; otherwise list everything
        // under `validation_failed`.
        match (c.finish(), policy) {
            (Ok(()), Err(p)) => return Err(p.into()),
            (Err(DomainError::Validation(mut v)), Err(DomainError::PasswordPolicy(p))) => {
                v.extend(p);
                return Err(DomainError::Validation(v).into());
            }
            (Err(e), _) => return Err(e.into()),
            (Ok(()), Ok(())) => {}
        }
        match (username, first_name, last_name, email, phone, role) {
            (
                Some(username),
                Some(first_name),
                Some(last_name),
                Some(email),
                Some(phone),
                Some(role),
            ) => Ok(ParsedUser {
                username,
                first_name,
                last_name,
                email,
                phone,
                role,
            }),
            _ => Err(StoreError::Internal(
                "validation passed with missing fields".into(),
            )),
        }
    }
}

/// Changes an admin makes to a user row; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserChange {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    /// A new address, or none; either way it is unproven (M10).
    pub email: Option<Option<EmailAddress>>,
    /// A new number, or none; either way it is unproven (M10).
    pub phone: Option<Option<PhoneE164>>,
    pub role: Option<Role>,
    pub active: Option<bool>,
    /// The account waits, inactive, for a support admin other than this one (S4).
    pub pending_approval_by: Option<UserId>,
}

/// Filters of the user list.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub active: Option<bool>,
    pub locked: Option<bool>,
    pub q: Option<String>,
    /// Only members of this group (of the same tenant).
    pub group: Option<GroupId>,
}

/// One tenant's users.
pub struct Users<'a> {
    pub(crate) scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This tenant's users.
    pub fn users(self) -> Users<'a> {
        Users { scope: self }
    }
}

impl Users<'_> {
    /// Sets the user's MFA method (and, with `enrollment`, the enrollment mode).
    pub async fn set_mfa<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        method: UserMethod,
        enrollment: Option<Enrollment>,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let mut q = users::Entity::update_many()
            .col_expr(users::Column::MfaMethod, Expr::value(method.as_str()))
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(self.scope.inner.clock.now()),
            )
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)));
        if let Some(e) = enrollment {
            q = q.col_expr(users::Column::MfaEnrollment, Expr::value(e.as_str()));
        }
        if q.exec(conn).await?.rows_affected != 1 {
            return Err(DomainError::NotFound.into());
        }
        Ok(())
    }

    /// M9: enrollment becomes `require` and the address of an email or SMS method
    /// loses its proof, so the next sign-in enrolls again.
    pub async fn reset_mfa<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        method: UserMethod,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let mut q = users::Entity::update_many()
            .col_expr(
                users::Column::MfaEnrollment,
                Expr::value(Enrollment::Require.as_str()),
            )
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(self.scope.inner.clock.now()),
            )
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)));
        match method {
            UserMethod::Email => q = q.col_expr(users::Column::EmailVerified, Expr::value(false)),
            UserMethod::Sms => q = q.col_expr(users::Column::PhoneVerified, Expr::value(false)),
            UserMethod::Totp | UserMethod::None => {}
        }
        if q.exec(conn).await?.rows_affected != 1 {
            return Err(DomainError::NotFound.into());
        }
        Ok(())
    }

    /// Sets the user's MFA method.
    pub async fn set_method<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        method: UserMethod,
    ) -> Result<()> {
        self.set_mfa(conn, user, method, None).await
    }

    /// Records a proven address as the user's verified email or phone; with `as_method`
    /// it also becomes the MFA method.
    pub async fn set_verified_contact<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: UserId,
        destination: &Destination,
        as_method: bool,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let (value_col, verified_col, value, method) = match destination {
            Destination::Email(e) => (
                users::Column::Email,
                users::Column::EmailVerified,
                e.as_str().to_owned(),
                UserMethod::Email,
            ),
            Destination::Sms(p) => (
                users::Column::Phone,
                users::Column::PhoneVerified,
                p.as_str().to_owned(),
                UserMethod::Sms,
            ),
        };
        let mut q = users::Entity::update_many()
            .col_expr(value_col, Expr::value(Some(value)))
            .col_expr(verified_col, Expr::value(true))
            .col_expr(
                users::Column::UpdatedAt,
                Expr::value(self.scope.inner.clock.now()),
            )
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)));
        if as_method {
            q = q.col_expr(users::Column::MfaMethod, Expr::value(method.as_str()));
        }
        if q.exec(conn).await?.rows_affected != 1 {
            return Err(DomainError::NotFound.into());
        }
        Ok(())
    }

    fn tenant_filter(&self) -> Condition {
        Condition::all().add(users::Column::TenantId.eq(self.scope.uuid()))
    }

    /// The row of a user of this tenant.
    pub(crate) async fn find_model<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: &UserRef,
    ) -> Result<Option<users::Model>> {
        let by = match user {
            UserRef::Id(id) => users::Column::Id.eq(*id),
            UserRef::Username(lower) => users::Column::UsernameLower.eq(lower.as_str()),
        };
        Ok(users::Entity::find()
            .filter(self.tenant_filter().add(by))
            .one(conn)
            .await?)
    }

    /// Stores a new user in `txn` (inactive, waiting, when `approval_by` is set: S4), with
    /// `password_hash` to be changed at the first sign-in.
    pub async fn create(
        &self,
        txn: &crate::WriteTxn,
        p: &ParsedUser,
        password_hash: String,
        approval_by: Option<UserId>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<User> {
        let m = self
            .insert(&**txn, p, password_hash, true, approval_by, now)
            .await?;
        User::from_model(m)
    }

    /// Stores a new user in `txn` with a password the operator chose, not to be changed at
    /// the first sign-in (bootstrap, demo seed).
    pub async fn create_with_password(
        &self,
        txn: &crate::WriteTxn,
        p: &ParsedUser,
        password_hash: String,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<User> {
        let m = self
            .insert(&**txn, p, password_hash, false, None, now)
            .await?;
        User::from_model(m)
    }

    /// How many users of this tenant have `role`.
    pub async fn count_with_role(&self, role: Role) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(users::Entity::find()
            .filter(
                self.tenant_filter()
                    .add(users::Column::Role.eq(role.as_str())),
            )
            .count(&self.scope.inner.db)
            .await?)
    }

    /// Applies `change` to a user of this tenant in `txn`.
    pub async fn change(
        &self,
        txn: &crate::WriteTxn,
        user: UserId,
        change: &UserChange,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        let mut q = users::Entity::update_many()
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)));
        if let Some(n) = &change.first_name {
            q = q.col_expr(users::Column::FirstName, Expr::value(n.clone()));
        }
        if let Some(n) = &change.last_name {
            q = q.col_expr(users::Column::LastName, Expr::value(n.clone()));
        }
        if let Some(e) = &change.email {
            q = q
                .col_expr(
                    users::Column::Email,
                    Expr::value(e.as_ref().map(|e| e.as_str().to_owned())),
                )
                .col_expr(users::Column::EmailVerified, Expr::value(false));
        }
        if let Some(p) = &change.phone {
            q = q
                .col_expr(
                    users::Column::Phone,
                    Expr::value(p.as_ref().map(|p| p.as_str().to_owned())),
                )
                .col_expr(users::Column::PhoneVerified, Expr::value(false));
        }
        if let Some(r) = change.role {
            q = q.col_expr(users::Column::Role, Expr::value(r.as_str()));
        }
        if let Some(a) = change.active {
            q = q.col_expr(users::Column::Active, Expr::value(a));
        }
        if let Some(by) = change.pending_approval_by {
            q = q
                .col_expr(users::Column::Active, Expr::value(false))
                .col_expr(users::Column::PendingApproval, Expr::value(true))
                .col_expr(users::Column::ApprovalRequestedBy, Expr::value(Some(by.0)));
        }
        q.exec(&**txn).await?;
        Ok(())
    }

    /// Activates an account waiting for approval (S4) in `txn`, only while it still
    /// waits: of two approvals racing, one does it. Whether this one did.
    pub async fn activate_pending(
        &self,
        txn: &crate::WriteTxn,
        user: UserId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool> {
        use sea_orm::sea_query::Expr;
        let done = users::Entity::update_many()
            .col_expr(users::Column::Active, Expr::value(true))
            .col_expr(users::Column::PendingApproval, Expr::value(false))
            .col_expr(
                users::Column::ApprovalRequestedBy,
                Expr::value(Option::<Uuid>::None),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(
                self.tenant_filter()
                    .add(users::Column::Id.eq(user.0))
                    .add(users::Column::PendingApproval.eq(true)),
            )
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok(done == 1)
    }

    /// Clears a user's lock and failure counts in `txn`.
    pub async fn unlock(
        &self,
        txn: &crate::WriteTxn,
        user: UserId,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        users::Entity::update_many()
            .col_expr(users::Column::Locked, Expr::value(false))
            .col_expr(users::Column::FailedLogins, Expr::value(0))
            .col_expr(users::Column::MfaFailures, Expr::value(0))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)))
            .exec(&**txn)
            .await?;
        Ok(())
    }

    /// Stores a user's new password hash in `txn`; `must_change`: it is temporary (P3).
    pub async fn set_password(
        &self,
        txn: &crate::WriteTxn,
        user: UserId,
        (hash, must_change): (String, bool),
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        use sea_orm::sea_query::Expr;
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .col_expr(users::Column::MustChangePassword, Expr::value(must_change))
            .col_expr(users::Column::PasswordChangedAt, Expr::value(Some(now)))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)))
            .exec(&**txn)
            .await?;
        Ok(())
    }

    /// Marks every active user of this tenant who was not already marked as having to
    /// change their password at the next sign-in, in `txn`; how many were marked.
    pub async fn require_password_change_all(
        &self,
        txn: &crate::WriteTxn,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64> {
        use sea_orm::sea_query::Expr;
        Ok(users::Entity::update_many()
            .col_expr(users::Column::MustChangePassword, Expr::value(true))
            .col_expr(users::Column::UpdatedAt, Expr::value(now))
            .filter(
                self.tenant_filter()
                    .add(users::Column::Active.eq(true))
                    .add(users::Column::MustChangePassword.eq(false)),
            )
            .exec(&**txn)
            .await?
            .rows_affected)
    }

    /// Replaces a user's login hours in `txn`.
    pub async fn replace_windows(
        &self,
        txn: &crate::WriteTxn,
        user: UserId,
        windows: &[LoginWindow],
    ) -> Result<()> {
        login_hours::Entity::delete_many()
            .filter(login_hours::Column::TenantId.eq(self.scope.uuid()))
            .filter(login_hours::Column::UserId.eq(user.0))
            .exec(&**txn)
            .await?;
        self.insert_windows(&**txn, user.0, windows).await
    }

    /// A user of this tenant with their second factors (authenticator, recovery codes
    /// left), without groups: what a sign-in or MFA step decides on.
    pub async fn find(&self, user: &UserRef) -> Result<Option<User>> {
        let Some(m) = self.find_model(&self.scope.inner.db, user).await? else {
            return Ok(None);
        };
        let mut u = User::from_model(m)?;
        let (totp, left) = self.scope.mfa().second_factors(u.id).await?;
        u.totp_enrolled = totp;
        u.recovery_codes_remaining = left;
        Ok(Some(u))
    }

    /// The id of a user of this tenant, read in `txn`.
    pub async fn id_in(&self, txn: &crate::WriteTxn, user: &UserRef) -> Result<Option<UserId>> {
        Ok(self.find_model(&**txn, user).await?.map(|m| UserId(m.id)))
    }

    /// The stored Argon2id hash of a user of this tenant.
    pub async fn password_hash(&self, user: UserId) -> Result<String> {
        let hash: Option<String> = users::Entity::find()
            .select_only()
            .column(users::Column::PasswordHash)
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)))
            .into_tuple()
            .one(&self.scope.inner.db)
            .await?;
        Ok(hash.ok_or(DomainError::NotFound)?)
    }

    /// The username of a user of this tenant, if there is such a user.
    pub async fn username_of(&self, user: UserId) -> Result<Option<String>> {
        Ok(users::Entity::find()
            .select_only()
            .column(users::Column::Username)
            .filter(self.tenant_filter().add(users::Column::Id.eq(user.0)))
            .into_tuple()
            .one(&self.scope.inner.db)
            .await?)
    }

    /// How many active, unlocked practice admins this tenant has besides `except`.
    pub async fn other_active_admins(&self, except: UserId) -> Result<u64> {
        use sea_orm::PaginatorTrait;
        Ok(users::Entity::find()
            .filter(
                self.tenant_filter()
                    .add(users::Column::Role.eq(Role::PracticeAdmin.as_str()))
                    .add(users::Column::Active.eq(true))
                    .add(users::Column::Locked.eq(false))
                    .add(users::Column::Id.ne(except.0)),
            )
            .count(&self.scope.inner.db)
            .await?)
    }

    /// The active practice admins of this tenant with the email address each has (if it
    /// is a valid one), read in `conn` (a transaction about to write to them).
    pub async fn admin_addresses<C: ConnectionTrait>(
        &self,
        conn: &C,
    ) -> Result<Vec<(UserId, Option<EmailAddress>)>> {
        let admins: Vec<(Uuid, Option<String>)> = users::Entity::find()
            .select_only()
            .column(users::Column::Id)
            .column(users::Column::Email)
            .filter(
                self.tenant_filter()
                    .add(users::Column::Role.eq(Role::PracticeAdmin.as_str()))
                    .add(users::Column::Active.eq(true)),
            )
            .into_tuple()
            .all(conn)
            .await?;
        Ok(admins
            .into_iter()
            .map(|(id, email)| (UserId(id), email.and_then(|a| EmailAddress::parse(&a).ok())))
            .collect())
    }

    /// A user of this tenant with its groups, or `NotFound`.
    pub async fn get(&self, user: &UserRef) -> Result<User> {
        let db = &self.scope.inner.db;
        let m = self
            .find_model(db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        let mut u = User::from_model(m)?;
        u.groups = self
            .groups_of(db, &[u.id.0])
            .await?
            .remove(&u.id.0)
            .unwrap_or_default();
        let (totp, left) = self
            .mfa_of(db, &[u.id.0])
            .await?
            .remove(&u.id.0)
            .unwrap_or_default();
        u.totp_enrolled = totp;
        u.recovery_codes_remaining = left;
        Ok(u)
    }

    /// Groups of several users of this tenant, by user id.
    pub(crate) async fn groups_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<GroupRef>>> {
        groups_in(conn, &[self.scope.uuid()], user_ids).await
    }

    /// Authenticator enrolled and recovery codes left, for several users of this tenant.
    pub(crate) async fn mfa_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_ids: &[Uuid],
    ) -> Result<HashMap<Uuid, (bool, u32)>> {
        mfa_in(conn, &[self.scope.uuid()], user_ids).await
    }

    /// Users ordered by username; the cursor is the last username of the previous page.
    pub async fn list(
        &self,
        filter: &UserFilter,
        limit: u64,
        cursor: Option<&str>,
    ) -> Result<Page<User>> {
        use users::Column as C;
        let mut cond = self.tenant_filter();
        if let Some(a) = filter.active {
            cond = cond.add(C::Active.eq(a));
        }
        if let Some(l) = filter.locked {
            cond = cond.add(C::Locked.eq(l));
        }
        if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
            let escaped: String = q
                .to_lowercase()
                .chars()
                .filter(|c| !matches!(c, '%' | '_' | '\\'))
                .collect();
            let pattern = format!("%{escaped}%");
            use sea_orm::sea_query::{Expr, ExprTrait, Func};
            let like = |col: C| Expr::expr(Func::lower(Expr::col(col))).like(pattern.clone());
            cond = cond.add(
                Condition::any()
                    .add(C::UsernameLower.like(pattern.clone()))
                    .add(like(C::FirstName))
                    .add(like(C::LastName))
                    .add(like(C::Email))
                    .add(like(C::Phone)),
            );
        }
        if let Some(g) = filter.group {
            use sea_orm::sea_query::Query;
            cond = cond.add(
                C::Id.in_subquery(
                    Query::select()
                        .column(group_members::Column::UserId)
                        .from(group_members::Entity)
                        .and_where(group_members::Column::TenantId.eq(self.scope.uuid()))
                        .and_where(group_members::Column::GroupId.eq(g.0))
                        .to_owned(),
                ),
            );
        }
        if let Some(c) = cursor {
            cond = cond.add(C::UsernameLower.gt(c));
        }
        let db = &self.scope.inner.db;
        let mut rows = users::Entity::find()
            .filter(cond)
            .order_by_asc(C::UsernameLower)
            .limit(limit + 1)
            .all(db)
            .await?;
        let next_cursor = if rows.len() as u64 > limit {
            rows.truncate(limit as usize);
            rows.last().map(|r| r.username_lower.clone())
        } else {
            None
        };
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let mut groups = self.groups_of(db, &ids).await?;
        let mut mfa = self.mfa_of(db, &ids).await?;
        let items = rows
            .into_iter()
            .map(|m| {
                let id = m.id;
                User::from_model(m).map(|mut u| {
                    u.groups = groups.remove(&id).unwrap_or_default();
                    let (totp, left) = mfa.remove(&id).unwrap_or_default();
                    u.totp_enrolled = totp;
                    u.recovery_codes_remaining = left;
                    u
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Page { items, next_cursor })
    }

    /// Inserts a user row; a taken username is a `Conflict`. With `approval_by`, the
    /// account waits inactive for a support admin other than that user (S4).
    pub(crate) async fn insert<C: ConnectionTrait>(
        &self,
        conn: &C,
        p: &ParsedUser,
        password_hash: String,
        must_change_password: bool,
        approval_by: Option<UserId>,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<users::Model> {
        let row = users::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            username: Set(p.username.as_str().to_owned()),
            username_lower: Set(p.username.lower()),
            first_name: Set(p.first_name.clone()),
            last_name: Set(p.last_name.clone()),
            email: Set(p.email.as_ref().map(|e| e.as_str().to_owned())),
            email_verified: Set(false),
            phone: Set(p.phone.as_ref().map(|e| e.as_str().to_owned())),
            phone_verified: Set(false),
            role: Set(p.role.as_str().to_owned()),
            active: Set(approval_by.is_none()),
            pending_approval: Set(approval_by.is_some()),
            approval_requested_by: Set(approval_by.map(|u| u.0)),
            locked: Set(false),
            must_change_password: Set(must_change_password),
            password_hash: Set(password_hash),
            failed_logins: Set(0),
            mfa_failures: Set(0),
            login_tries: Set(0),
            login_tries_at: Set(None),
            mfa_method: Set(UserMethod::None.as_str().to_owned()),
            mfa_enrollment: Set(Enrollment::NextLogin.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(None),
            password_changed_at: Set(None),
        };
        users::Entity::insert(row)
            .exec_with_returning(conn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    DomainError::Conflict(format!("username '{}' is already taken", p.username))
                        .into()
                } else {
                    StoreError::from(e)
                }
            })
    }

    /// Adds a user to groups of this tenant; unknown group ids are a validation error.
    pub async fn add_to_groups<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: Uuid,
        group_ids: &[Uuid],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<()> {
        if group_ids.is_empty() {
            return Ok(());
        }
        let found: Vec<Uuid> = groups::Entity::find()
            .select_only()
            .column(groups::Column::Id)
            .filter(groups::Column::TenantId.eq(self.scope.uuid()))
            .filter(groups::Column::Id.is_in(group_ids.iter().copied()))
            .into_tuple()
            .all(conn)
            .await?;
        if let Some(missing) = group_ids.iter().find(|g| !found.contains(g)) {
            return Err(DomainError::field(
                "groups",
                format!("no group {missing} in this practice"),
            )
            .into());
        }
        let mut unique = group_ids.to_vec();
        unique.sort();
        unique.dedup();
        let rows = unique.into_iter().map(|g| group_members::ActiveModel {
            group_id: Set(g),
            user_id: Set(user),
            tenant_id: Set(self.scope.uuid()),
            added_at: Set(now),
        });
        group_members::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// The user's login hours.
    pub async fn login_hours(&self, user: &UserRef) -> Result<Vec<LoginWindow>> {
        let db = &self.scope.inner.db;
        let m = self
            .find_model(db, user)
            .await?
            .ok_or(DomainError::NotFound)?;
        self.windows_of(db, m.id).await
    }

    /// Adds login-hours windows to a user of this tenant.
    pub async fn insert_windows<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: Uuid,
        windows: &[LoginWindow],
    ) -> Result<()> {
        if windows.is_empty() {
            return Ok(());
        }
        let rows = windows.iter().map(|w| login_hours::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(user),
            weekday: Set(w.weekday.index()),
            start_minute: Set(i32::from(w.start_minute)),
            end_minute: Set(i32::from(w.end_minute)),
        });
        login_hours::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
        Ok(())
    }

    /// The login hours of a user of this tenant (none: any time).
    pub async fn windows(&self, user: UserId) -> Result<Vec<LoginWindow>> {
        self.windows_of(&self.scope.inner.db, user.0).await
    }

    pub(crate) async fn windows_of<C: ConnectionTrait>(
        &self,
        conn: &C,
        user: Uuid,
    ) -> Result<Vec<LoginWindow>> {
        let rows = login_hours::Entity::find()
            .filter(login_hours::Column::TenantId.eq(self.scope.uuid()))
            .filter(login_hours::Column::UserId.eq(user))
            .order_by_asc(login_hours::Column::Weekday)
            .order_by_asc(login_hours::Column::StartMinute)
            .all(conn)
            .await?;
        rows.into_iter()
            .map(|r| {
                let corrupt = || StoreError::Corrupt(format!("login hours {}", r.id));
                Ok(LoginWindow {
                    weekday: Weekday::from_index(r.weekday).ok_or_else(corrupt)?,
                    start_minute: u16::try_from(r.start_minute).map_err(|_| corrupt())?,
                    end_minute: u16::try_from(r.end_minute).map_err(|_| corrupt())?,
                })
            })
            .collect()
    }
}

/// Groups of several users of the given tenants, by user id: the rows of a user are
/// found only under its own tenant (one of `tenants`). One statement for a page of users
/// of many practices (the support search), or of one practice.
pub(crate) async fn groups_in<C: ConnectionTrait>(
    conn: &C,
    tenants: &[Uuid],
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Vec<GroupRef>>> {
    if user_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(Uuid, Uuid, String)> = group_members::Entity::find()
        .select_only()
        .column(group_members::Column::UserId)
        .column(groups::Column::Id)
        .column(groups::Column::Name)
        .join(JoinType::InnerJoin, group_members::Relation::Group.def())
        .filter(group_members::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(group_members::Column::UserId.is_in(user_ids.iter().copied()))
        .order_by_asc(groups::Column::NameLower)
        .into_tuple()
        .all(conn)
        .await?;
    let mut out: HashMap<Uuid, Vec<GroupRef>> = HashMap::new();
    for (user, id, name) in rows {
        out.entry(user).or_default().push(GroupRef {
            id: GroupId(id),
            name,
        });
    }
    Ok(out)
}

/// Authenticator enrolled and recovery codes left, for several users of the given
/// tenants (as [`groups_in`]).
pub(crate) async fn mfa_in<C: ConnectionTrait>(
    conn: &C,
    tenants: &[Uuid],
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, (bool, u32)>> {
    use crate::entities::{recovery_codes as rc, totp_credentials as tc};
    let mut out: HashMap<Uuid, (bool, u32)> = HashMap::new();
    if user_ids.is_empty() {
        return Ok(out);
    }
    let enrolled: Vec<Uuid> = tc::Entity::find()
        .select_only()
        .column(tc::Column::UserId)
        .filter(tc::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(tc::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(tc::Column::Confirmed.eq(true))
        .into_tuple()
        .all(conn)
        .await?;
    for u in enrolled {
        out.entry(u).or_default().0 = true;
    }
    let left: Vec<(Uuid, i64)> = rc::Entity::find()
        .select_only()
        .column(rc::Column::UserId)
        .column_as(rc::Column::Id.count(), "n")
        .filter(rc::Column::TenantId.is_in(tenants.iter().copied()))
        .filter(rc::Column::UserId.is_in(user_ids.iter().copied()))
        .filter(rc::Column::UsedAt.is_null())
        .group_by(rc::Column::UserId)
        .into_tuple()
        .all(conn)
        .await?;
    for (u, n) in left {
        out.entry(u).or_default().1 = u32::try_from(n).unwrap_or(0);
    }
    Ok(out)
}
