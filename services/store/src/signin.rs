//! Password sign-in (P1-P5) and the sign-in flow.
//!
//! Unknown company, unknown user and wrong password give the same error after the same
//! work (a dummy Argon2 verify stands in for the missing hash). Inactive users and
//! suspended practices are only told so after the right password, so those answers
//! leak nothing to someone guessing.

use crate::audit::event;
use crate::audit::{actor_user, user_target};
use crate::entities::{sign_in_flows, tenants, users};
use crate::error::StoreError;
use crate::mfa::CodeOwner;
use crate::records::Tenant;
use crate::scope::TenantScope;
use crate::sessions::NewSession;
use crate::sql::{prefixed_columns, stmt};
use crate::tenants::ensure_active;
use crate::tries::Taken;
use crate::{RequestMeta, Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::audit::NewEvent;
use gatehouse_domain::audit::{Action, Actor};
use gatehouse_domain::ids::{CompanyId, FlowId, UserId, Username};
use gatehouse_domain::login_hours::is_allowed;
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use gatehouse_domain::mfa::flow::{FlowMfa, FlowState, mfa_view, next_step, status_of};
use gatehouse_domain::mfa::step::{Bypass, Factor, Step};
use gatehouse_domain::password::{Verified, check_policy};
use gatehouse_domain::signin::{FlowStatus, flow_lifetime};
use gatehouse_domain::{Error as DomainError, FieldError};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter,
};
use secrecy::SecretString;
use serde_json::json;
use uuid::Uuid;

/// `POST /v1/auth/login` as submitted.
#[derive(Debug)]
pub struct LoginInput {
    pub company: String,
    pub username: String,
    pub password: SecretString,
    pub device_token: Option<SecretString>,
}

/// A flow as the client sees it after a step.
#[derive(Debug)]
pub struct FlowView {
    pub flow_id: FlowId,
    pub status: FlowStatus,
    pub expires_at: DateTime<Utc>,
    pub mfa: Option<FlowMfa>,
    pub session: Option<NewSession>,
    /// Only when a device was just remembered.
    pub device_token: Option<SecretString>,
    /// Only right after an authenticator enrollment completed.
    pub recovery_codes: Option<Vec<String>>,
}

/// Moving a flow (new or existing) to its next step.
pub(crate) struct Advance<'a> {
    pub tenant: &'a Tenant,
    pub user: &'a users::Model,
    pub flow: Option<&'a sign_in_flows::Model>,
    pub state: FlowState,
    /// The temporary password still has to be replaced (P3): that step comes first.
    pub password_pending: bool,
    pub new_hash: Option<String>,
    /// Audit events of the step, committed with it.
    pub events: Vec<NewEvent>,
}

/// What the sign-in query tells about a user besides the row.
#[derive(Debug, Clone, Copy)]
struct LoginHints {
    /// The user has login hours (without, any time is allowed).
    login_hours: bool,
    /// The practice has trusted networks for everyone or for this user.
    trusted_networks: bool,
}

/// Reads a flow row's state.
pub(crate) fn flow_state(flow: &sign_in_flows::Model) -> Result<FlowState> {
    FlowState::from_json(&flow.state)
        .ok_or_else(|| StoreError::Corrupt(format!("flow {}: state", flow.id)))
}

impl Store {
    /// The tenant and (if it exists) the user, in one query, with whether the user has
    /// login hours and the practice trusted networks that may apply to the user: most have
    /// neither, and their sign-in then skips those two reads.
    async fn load_for_login(
        &self,
        company: &CompanyId,
        username: &Username,
    ) -> Result<Option<(Tenant, Option<(users::Model, LoginHints)>)>> {
        let sql = format!(
            "SELECT {t}, {u}, \
             (SELECT COUNT(*) FROM login_hours h \
              WHERE h.tenant_id = t.id AND h.user_id = u.id) AS n_login_hours, \
             (SELECT COUNT(*) FROM trusted_networks n \
              WHERE n.tenant_id = t.id AND (n.user_id IS NULL OR n.user_id = u.id)) AS n_networks \
             FROM tenants t \
             LEFT JOIN users u ON u.tenant_id = t.id AND u.username_lower = $2 \
             WHERE t.company = $1",
            t = prefixed_columns::<tenants::Column>("t", "t_"),
            u = prefixed_columns::<users::Column>("u", "u_"),
        );
        let row = self
            .inner
            .db
            .query_one_raw(stmt(
                self.backend(),
                &sql,
                vec![company.as_str().into(), username.lower().into()],
            ))
            .await?;
        let Some(row) = row else { return Ok(None) };
        let tenant = Tenant::try_from(tenants::Model::from_query_result(&row, "t_")?)?;
        let user_id: Option<Uuid> = row.try_get("", "u_id")?;
        let user = match user_id {
            Some(_) => Some((
                users::Model::from_query_result(&row, "u_")?,
                LoginHints {
                    login_hours: row.try_get::<i64>("", "n_login_hours")? > 0,
                    trusted_networks: row.try_get::<i64>("", "n_networks")? > 0,
                },
            )),
            None => None,
        };
        Ok(Some((tenant, user)))
    }

    /// Verifies the dummy hash so a missing user costs what a real one does.
    async fn burn_verify(&self, password: SecretString) -> Result<()> {
        self.inner
            .hasher
            .verify(self.inner.dummy_hash.clone(), password)
            .await?;
        Ok(())
    }

    /// `POST /v1/auth/login`. The attempt is taken from the client's allowance before the
    /// password is checked (see [`crate::ratelimit`]); a wrong password, unknown user or
    /// unknown company keeps it.
    #[tracing::instrument(skip_all, fields(company = %input.company))]
    pub async fn login(&self, input: LoginInput, meta: &RequestMeta) -> Result<FlowView> {
        let attempt = match meta.ip {
            Some(ip) => Some(
                self.inner
                    .login_limiter
                    .begin(ip)
                    .await
                    .map_err(|retry_after_secs| DomainError::RateLimited { retry_after_secs })?,
            ),
            None => None,
        };
        let result = self.login_inner(input, meta).await;
        if let (Err(crate::StoreError::Domain(DomainError::InvalidCredentials)), Some(a)) =
            (&result, attempt)
        {
            a.failed().await;
        }
        result
    }

    async fn login_inner(&self, input: LoginInput, meta: &RequestMeta) -> Result<FlowView> {
        let (Ok(company), Ok(username)) = (
            CompanyId::parse(&input.company),
            Username::parse(&input.username),
        ) else {
            self.burn_verify(input.password).await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        let Some((tenant, user)) = self.load_for_login(&company, &username).await? else {
            self.burn_verify(input.password).await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        crate::telemetry::record_tenant(tenant.id);
        let scope = self.tenant(tenant.id);
        let Some((user, hints)) = user else {
            self.burn_verify(input.password).await?;
            scope
                .audit()
                .record(event(
                    Action::SigninFailed,
                    Actor::anonymous(),
                    None,
                    meta,
                    // Not the typed username: it is sometimes a password typed into the wrong box.
                    json!({"reason": "unknown_user"}),
                ))
                .await?;
            return Err(DomainError::InvalidCredentials.into());
        };
        // The try is taken before the password is checked (P4): concurrent guesses are
        // judged one by one, and none is checked once the lock is reached.
        let threshold = tenant.settings.lockout_threshold;
        let taken = scope.tries().take_password(user.id, threshold).await?;
        let target = Some(user_target(UserId(user.id), &user.username));
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
                    .inner
                    .hasher
                    .verify(user.password_hash.clone(), input.password)
                    .await?;
                let (action, reason, err) = match verified {
                    Verified::Yes { .. } => {
                        (Action::SigninRefused, "locked", DomainError::AccountLocked)
                    }
                    Verified::No => (
                        Action::SigninFailed,
                        "wrong_password_while_locked",
                        DomainError::InvalidCredentials,
                    ),
                };
                scope
                    .audit()
                    .record(event(
                        action,
                        actor_user(&user),
                        target,
                        meta,
                        json!({"reason": reason}),
                    ))
                    .await?;
                return Err(err.into());
            }
        };
        let verified = self
            .inner
            .hasher
            .verify(user.password_hash.clone(), input.password.clone())
            .await;
        let verified = match verified {
            Ok(v) => v,
            Err(e) => {
                scope.tries().password_release(user.id).await?;
                return Err(e);
            }
        };
        let Verified::Yes { rehash } = verified else {
            return Err(self
                .count_failure(scope, threshold, &user, meta, "wrong_password")
                .await);
        };
        // Guesses checked beside this one are judged first: a lock they reach wins
        // (the flow below is only created for a user who is not locked).
        scope.tries().password_right(user.id).await?;
        let refusal = ensure_active(&tenant)
            .err()
            .or_else(|| (!user.active).then_some(DomainError::AccountInactive));
        let refusal = match refusal {
            Some(r) => Some(r),
            None if hints.login_hours => {
                let windows = scope.users().windows_of(&self.inner.db, user.id).await?;
                (!is_allowed(&windows, tenant.timezone, self.inner.clock.now()))
                    .then_some(DomainError::OutsideLoginHours)
            }
            // No hours: any time is allowed.
            None => None,
        };
        if let Some(r) = refusal {
            let reason = match r {
                DomainError::TenantSuspended => "tenant_suspended",
                DomainError::AccountInactive => "inactive",
                _ => "outside_login_hours",
            };
            scope
                .audit()
                .record(event(
                    Action::SigninRefused,
                    actor_user(&user),
                    target,
                    meta,
                    json!({"reason": reason}),
                ))
                .await?;
            return Err(r.into());
        }
        let new_hash = if rehash {
            Some(self.inner.hasher.hash(input.password).await?)
        } else {
            None
        };
        let bypass = self
            .find_bypass(
                scope,
                &user,
                input.device_token.as_ref(),
                hints.trusted_networks,
                meta,
            )
            .await?;
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

    /// A remembered device of this very user, else a trusted network (M7, M8); the
    /// networks are read only if `networks` says some may apply.
    async fn find_bypass(
        &self,
        scope: TenantScope<'_>,
        user: &users::Model,
        device_token: Option<&SecretString>,
        networks: bool,
        meta: &RequestMeta,
    ) -> Result<Option<Bypass>> {
        let uid = UserId(user.id);
        if let Some(t) = device_token
            && scope.mfa().device_trusted(uid, t).await?
        {
            return Ok(Some(Bypass::RememberedDevice));
        }
        if networks && scope.mfa().from_trusted_network(uid, meta.ip).await? {
            return Ok(Some(Bypass::TrustedNetwork));
        }
        Ok(None)
    }

    /// Records a wrong password whose try was taken; the failure that reaches the
    /// tenant's threshold locks the user (P4).
    pub(crate) async fn count_failure(
        &self,
        scope: TenantScope<'_>,
        threshold: u32,
        user: &users::Model,
        meta: &RequestMeta,
        reason: &'static str,
    ) -> crate::StoreError {
        let result: Result<()> = async {
            let txn = self.inner.begin_write().await?;
            let (n, locked) = scope
                .tries()
                .password_wrong(&txn, user.id, threshold)
                .await?;
            let target = Some(user_target(UserId(user.id), &user.username));
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::SigninFailed,
                        actor_user(user),
                        target.clone(),
                        meta,
                        json!({"reason": reason, "failed_logins": n}),
                    ),
                )
                .await?;
            if locked {
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            Action::UserLocked,
                            Actor::system(),
                            target,
                            meta,
                            json!({"reason": "failed_logins", "failed_logins": n}),
                        ),
                    )
                    .await?;
            }
            txn.commit().await?;
            if locked {
                crate::telemetry::metrics().lockouts.add(1, &[]);
            }
            Ok(())
        }
        .await;
        match result {
            Ok(()) => DomainError::InvalidCredentials.into(),
            Err(e) => e,
        }
    }

    /// Moves a flow (new or existing) to its next step; on `authenticated` creates the
    /// session. Entering `mfa_required` for an email or SMS user sends the code.
    pub(crate) async fn advance(&self, a: Advance<'_>, meta: &RequestMeta) -> Result<FlowView> {
        let scope = self.tenant(a.tenant.id);
        let user = a.user;
        let (status, step, method) = if a.password_pending {
            (FlowStatus::PasswordChangeRequired, None, UserMethod::None)
        } else {
            let facts = self
                .mfa_facts(
                    a.tenant,
                    user,
                    a.state.bypass,
                    a.state.verified_at.is_some(),
                )
                .await?;
            let step = next_step(&facts, &a.state);
            (status_of(&step), Some(step), facts.method)
        };
        let now = self.inner.clock.now();
        let txn = self.inner.begin_write().await?;
        // First statement writes the user, so SQLite takes its write lock up front.
        // Conditional on the user not being locked: a lock reached while this step ran
        // (a burst of wrong passwords or codes) wins over it (P4, M13).
        let mut upd = users::Entity::update_many()
            .col_expr(
                users::Column::FailedLogins,
                sea_orm::sea_query::Expr::value(0),
            )
            .filter(users::Column::Id.eq(user.id))
            .filter(users::Column::TenantId.eq(scope.uuid()))
            .filter(users::Column::Locked.eq(false));
        if let Some(h) = a.new_hash {
            upd = upd.col_expr(
                users::Column::PasswordHash,
                sea_orm::sea_query::Expr::value(h),
            );
        }
        if status == FlowStatus::Authenticated {
            upd = upd.col_expr(
                users::Column::LastLoginAt,
                sea_orm::sea_query::Expr::value(Some(now)),
            );
        }
        if upd.exec(&txn).await?.rows_affected != 1 {
            return Err(DomainError::AccountLocked.into());
        }

        let completed = (status == FlowStatus::Authenticated).then_some(now);
        let state_json = a.state.to_json();
        let previous = a.flow.and_then(|f| FlowStatus::parse(&f.status));
        let (flow_id, expires_at) = match a.flow {
            Some(f) => {
                // Conditional on the step this call started from: of two concurrent
                // steps on one flow, one moves it and the other is told it is too late.
                let moved = sign_in_flows::Entity::update_many()
                    .col_expr(
                        sign_in_flows::Column::Status,
                        sea_orm::sea_query::Expr::value(status.as_str()),
                    )
                    .col_expr(
                        sign_in_flows::Column::State,
                        sea_orm::sea_query::Expr::value(state_json),
                    )
                    .col_expr(
                        sign_in_flows::Column::CompletedAt,
                        sea_orm::sea_query::Expr::value(completed),
                    )
                    .filter(sign_in_flows::Column::Id.eq(f.id))
                    .filter(sign_in_flows::Column::TenantId.eq(scope.uuid()))
                    .filter(sign_in_flows::Column::Status.eq(f.status.as_str()))
                    .filter(sign_in_flows::Column::CompletedAt.is_null())
                    .exec(&txn)
                    .await?
                    .rows_affected;
                if moved != 1 {
                    return Err(DomainError::FlowWrongStep.into());
                }
                (f.id, f.expires_at)
            }
            None => {
                let id = Uuid::new_v4();
                let expires_at = now + flow_lifetime();
                let row = sign_in_flows::ActiveModel {
                    id: Set(id),
                    tenant_id: Set(scope.uuid()),
                    user_id: Set(user.id),
                    status: Set(status.as_str().to_owned()),
                    state: Set(state_json),
                    ip: Set(meta.ip_string()),
                    user_agent: Set(meta.user_agent_trimmed()),
                    created_at: Set(now),
                    expires_at: Set(expires_at),
                    completed_at: Set(completed),
                    mfa_failures: Set(0),
                };
                sign_in_flows::Entity::insert(row)
                    .exec_without_returning(&txn)
                    .await?;
                (id, expires_at)
            }
        };
        for e in a.events {
            scope.audit().append_in(&txn, e).await?;
        }
        let target = Some(user_target(UserId(user.id), &user.username));
        let session = if status == FlowStatus::Authenticated {
            if let Some(Step::Done {
                bypassed: Some(via),
            }) = &step
            {
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            Action::MfaBypassed,
                            actor_user(user),
                            target.clone(),
                            meta,
                            json!({"via": via.as_str()}),
                        ),
                    )
                    .await?;
            }
            let s = scope
                .create_session(&txn, UserId(user.id), meta, a.state.verified_at)
                .await?;
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::SigninSucceeded,
                        actor_user(user),
                        target,
                        meta,
                        json!({
                            "flow_id": flow_id.to_string(),
                            "second_factor": a.state.verified_at.is_some(),
                        }),
                    ),
                )
                .await?;
            Some(s)
        } else {
            None
        };
        txn.commit().await?;
        let mut mfa = step.as_ref().and_then(|s| mfa_view(s, method));
        if status == FlowStatus::MfaRequired
            && previous != Some(FlowStatus::MfaRequired)
            && let Some(Step::Verify { preferred, .. }) = &step
            && let Some(channel) = match preferred {
                Factor::Email => Some(Channel::Email),
                Factor::Sms => Some(Channel::Sms),
                _ => None,
            }
            && let Some(m) = mfa.as_mut()
        {
            let sent = match crate::mfa::own_destination(user, channel, true) {
                Ok(dest) => {
                    self.send_code(
                        a.tenant,
                        user,
                        CodeOwner::Flow(FlowId(flow_id)),
                        Purpose::SignIn,
                        dest,
                        meta,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(s) => m.code_sent = Some(s),
                Err(crate::StoreError::Domain(d)) => {
                    // A channel that cannot be used at all now (opted out, suppressed, over
                    // budget, country) is not offered; the user's other methods are.
                    if gatehouse_domain::mfa::flow::channel_refusal(&d).is_some() {
                        let refused = gatehouse_domain::mfa::flow::factor_of(channel);
                        m.methods.retain(|f| *f != refused);
                        m.preferred = m.methods.first().copied();
                    }
                    m.code_error = Some(d);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(FlowView {
            flow_id: FlowId(flow_id),
            status,
            expires_at,
            mfa,
            session,
            device_token: None,
            recovery_codes: None,
        })
    }

    /// Loads a flow that can still take a step, with its user and tenant.
    pub(crate) async fn open_flow(
        &self,
        id: FlowId,
    ) -> Result<(sign_in_flows::Model, users::Model, Tenant)> {
        let flow = sign_in_flows::Entity::find_by_id(id.0)
            .one(&self.inner.db)
            .await?
            .ok_or(DomainError::NotFound)?;
        if flow.completed_at.is_some() {
            return Err(DomainError::FlowCompleted.into());
        }
        if self.inner.clock.now() >= flow.expires_at {
            return Err(DomainError::FlowExpired.into());
        }
        let tenant = tenants::Entity::find_by_id(flow.tenant_id)
            .one(&self.inner.db)
            .await?
            .ok_or(DomainError::NotFound)?;
        let tenant = Tenant::try_from(tenant)?;
        crate::telemetry::record_tenant(tenant.id);
        let user = self
            .tenant(tenant.id)
            .users()
            .find_model(&self.inner.db, &crate::scope::UserRef::Id(flow.user_id))
            .await?
            .ok_or(DomainError::NotFound)?;
        // The account may have been locked, deactivated or suspended since the password step.
        ensure_active(&tenant)?;
        if !user.active {
            return Err(DomainError::AccountInactive.into());
        }
        if user.locked {
            return Err(DomainError::AccountLocked.into());
        }
        Ok((flow, user, tenant))
    }

    /// `POST /v1/auth/flows/{flow_id}/password`: replaces a temporary password (P3).
    pub async fn flow_change_password(
        &self,
        id: FlowId,
        new_password: SecretString,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        if FlowStatus::parse(&flow.status) != Some(FlowStatus::PasswordChangeRequired) {
            return Err(DomainError::FlowWrongStep.into());
        }
        check_policy(
            &tenant.settings.password_policy,
            "new_password",
            &new_password,
            &user.username,
        )?;
        let same = self
            .inner
            .hasher
            .verify(user.password_hash.clone(), new_password.clone())
            .await?;
        if matches!(same, Verified::Yes { .. }) {
            return Err(DomainError::PasswordPolicy(vec![FieldError::rule(
                "new_password",
                "reused",
                "must differ from the temporary password",
            )])
            .into());
        }
        let hash = self.inner.hasher.hash(new_password).await?;
        self.replace_password(
            (tenant.id, UserId(user.id), &user.username),
            hash,
            None,
            actor_user(&user),
            meta,
            crate::users::PasswordVia::SignInFlow,
        )
        .await?;
        let state = flow_state(&flow)?;
        self.advance(
            Advance {
                tenant: &tenant,
                user: &user,
                flow: Some(&flow),
                state,
                password_pending: false,
                new_hash: None,
                events: Vec::new(),
            },
            meta,
        )
        .await
    }
}
