//! Sign-in (P1-P5, M1-M10): the password step, then the flow's second-factor and
//! enrollment steps, each one request of api.md's "Sign-in flow".
//!
//! Every step loads the flow, asks the domain what the flow may do now
//! (`gatehouse_domain::mfa::flow::next_step` over the user's facts and what the flow
//! has learnt so far), and moves the flow with [`SignIn::advance`], which creates the
//! session once nothing is left to prove. What the flow has learnt (the bypass found at
//! the password step, the second factor proven, a skipped suggestion) is kept in the
//! flow's state; wrong authenticator and recovery codes are counted on the flow, one-time
//! codes on their challenge.

mod enroll;
mod password;
mod verify;

use crate::{RequestMeta, Result, Tenant};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::SessionEnd;
use gatehouse_domain::audit::{Details, NewEvent};
use gatehouse_domain::ids::FlowId;
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::mfa::codes::{Channel, Purpose};
use gatehouse_domain::mfa::flow::{
    FlowMfa, FlowState, channel_refusal, factor_of, mfa_view, next_step, status_of,
};
use gatehouse_domain::mfa::step::{Factor, Facts, Step};
use gatehouse_domain::settings::AllowedMethod;
use gatehouse_domain::signin::{FlowStatus, flow_lifetime};
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::mfa::{CodeOwner, own_destination};
use gatehouse_store::scope::UserRef;
use gatehouse_store::sessions::NewSession;
use gatehouse_store::signin::{NewFlow, SignInFlow};
use gatehouse_store::{Store, TenantStatus, User};
use secrecy::SecretString;

pub use password::LoginInput;
pub use verify::VerifyInput;

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
    /// The flow's user ID, as stored (a page keeps a remembered computer per user).
    pub username: String,
    /// What a page says about the practice at this step.
    pub practice: FlowPractice,
}

/// The practice of a flow, as a sign-in page names it and its rules.
#[derive(Debug, Clone)]
pub struct FlowPractice {
    pub company: gatehouse_domain::ids::CompanyId,
    pub name: String,
    pub timezone: chrono_tz::Tz,
    pub remember_device_hours: u32,
    pub password_policy: gatehouse_domain::settings::PasswordPolicy,
}

impl FlowPractice {
    fn of(t: &Tenant) -> Self {
        FlowPractice {
            company: t.company.clone(),
            name: t.name.clone(),
            timezone: t.timezone,
            remember_device_hours: t.settings.remember_device_hours,
            password_policy: t.settings.password_policy.clone(),
        }
    }
}

/// The sign-in use cases (from [`crate::App::signin`]).
#[derive(Debug, Clone, Copy)]
pub struct SignIn<'a> {
    pub(crate) store: &'a Store,
}

/// Moving a flow (new or existing) to its next step.
struct Advance<'a> {
    tenant: &'a Tenant,
    user: &'a User,
    flow: Option<&'a SignInFlow>,
    state: FlowState,
    /// The temporary password still has to be replaced (P3): that step comes first.
    password_pending: bool,
    new_hash: Option<String>,
    /// Audit events of the step, committed with it.
    events: Vec<NewEvent>,
}

impl<'a> Advance<'a> {
    /// The next step of an open flow, with what the step learnt and audits.
    fn of(
        (flow, user, tenant): (&'a SignInFlow, &'a User, &'a Tenant),
        state: FlowState,
        events: Vec<NewEvent>,
    ) -> Self {
        Advance {
            tenant,
            user,
            flow: Some(flow),
            state,
            password_pending: false,
            new_hash: None,
            events,
        }
    }
}

/// Whether the practice may be used for sign-in: not while suspended (S3).
fn ensure_active(t: &Tenant) -> Result<(), DomainError> {
    match t.status {
        TenantStatus::Active => Ok(()),
        TenantStatus::Suspended => Err(DomainError::TenantSuspended),
    }
}

/// What `decide()` needs about `user` under `tenant`'s rules, given the flow's state.
fn facts(tenant: &Tenant, user: &User, state: &FlowState) -> Facts {
    Facts {
        bypass: state.bypass,
        verified: state.verified_at.is_some(),
        ..user.mfa_facts(tenant)
    }
}

/// The factors the flow's user can prove now, or `FlowWrongStep` unless the flow is at
/// `mfa_required`.
fn verify_step(flow: &SignInFlow, tenant: &Tenant, user: &User) -> Result<Vec<Factor>> {
    if flow.status != FlowStatus::MfaRequired {
        return Err(DomainError::FlowWrongStep.into());
    }
    match next_step(&facts(tenant, user, &flow.state), &flow.state) {
        Step::Verify { factors, .. } => Ok(factors),
        _ => Err(DomainError::FlowWrongStep.into()),
    }
}

/// The enrollment options of a flow at an enrollment step.
fn enroll_step(flow: &SignInFlow, tenant: &Tenant, user: &User) -> Result<Vec<AllowedMethod>> {
    if !matches!(
        flow.status,
        FlowStatus::MfaEnrollmentRequired | FlowStatus::MfaEnrollmentSuggested
    ) {
        return Err(DomainError::FlowWrongStep.into());
    }
    match next_step(&facts(tenant, user, &flow.state), &flow.state) {
        Step::EnrollRequired { options } | Step::EnrollSuggested { options } => Ok(options),
        _ => Err(DomainError::FlowWrongStep.into()),
    }
}

impl SignIn<'_> {
    /// Loads a flow that can still take a step, with its user and tenant.
    async fn open_flow(&self, id: FlowId) -> Result<(SignInFlow, User, Tenant)> {
        let flow = self
            .store
            .find_flow(id)
            .await?
            .ok_or(DomainError::NotFound)?;
        if flow.completed_at.is_some() {
            return Err(DomainError::FlowCompleted.into());
        }
        if self.store.clock().now() >= flow.expires_at {
            return Err(DomainError::FlowExpired.into());
        }
        let tenant = self
            .store
            .tenant_by_id(flow.tenant_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        gatehouse_store::telemetry::record_tenant(tenant.id);
        let user = self.user(&tenant, &flow).await?;
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

    /// The flow's user as the row is now.
    async fn user(&self, tenant: &Tenant, flow: &SignInFlow) -> Result<User> {
        Ok(self
            .store
            .tenant(tenant.id)
            .users()
            .find(&UserRef::Id(flow.user_id.0))
            .await?
            .ok_or(DomainError::NotFound)?)
    }

    /// Moves a flow (new or existing) to its next step; on `authenticated` creates the
    /// session. Entering `mfa_required` for an email or SMS user sends the code.
    async fn advance(&self, a: Advance<'_>, meta: &RequestMeta) -> Result<FlowView> {
        let scope = self.store.tenant(a.tenant.id);
        let user = a.user;
        let (status, step, method) = if a.password_pending {
            (FlowStatus::PasswordChangeRequired, None, UserMethod::None)
        } else {
            let facts = facts(a.tenant, user, &a.state);
            let step = next_step(&facts, &a.state);
            (status_of(&step), Some(step), facts.method)
        };
        let now = self.store.clock().now();
        let txn = self.store.begin_write().await?;
        // First statement writes the user, so SQLite takes its write lock up front.
        let signed_in = (status == FlowStatus::Authenticated).then_some(now);
        if !scope
            .users()
            .record_sign_in_step(&txn, user.id, a.new_hash, signed_in)
            .await?
        {
            return Err(DomainError::AccountLocked.into());
        }
        let previous = a.flow.map(|f| f.status);
        let (flow_id, expires_at) = match a.flow {
            Some(f) => {
                if !scope
                    .flows()
                    .advance(&txn, f, status, &a.state, signed_in)
                    .await?
                {
                    return Err(DomainError::FlowWrongStep.into());
                }
                (f.id, f.expires_at)
            }
            None => {
                let expires_at = now + flow_lifetime();
                let new = NewFlow {
                    user: user.id,
                    status,
                    state: &a.state,
                    created_at: now,
                    expires_at,
                    completed_at: signed_in,
                };
                (scope.flows().insert(&txn, new, meta).await?, expires_at)
            }
        };
        for e in a.events {
            scope.audit().append_in(&txn, e).await?;
        }
        let target = Some(user_target(user.id, &user.username));
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
                            actor_user(user),
                            target.clone(),
                            meta,
                            Details::MfaBypassed { via: *via },
                        ),
                    )
                    .await?;
            }
            let s = scope
                .create_session(
                    &*txn,
                    user.id,
                    meta,
                    a.state.verified_at,
                    &a.state.auth_context(),
                )
                .await?;
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_user(user),
                        target,
                        meta,
                        Details::SigninSucceeded {
                            flow_id: flow_id.0,
                            second_factor: a.state.verified_at.is_some(),
                        },
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
            let sent = match own_destination(user, channel, true) {
                Ok(dest) => {
                    crate::mfa::codes::send_code(
                        self.store,
                        a.tenant,
                        user,
                        (CodeOwner::Flow(flow_id), Purpose::SignIn),
                        dest,
                        meta,
                    )
                    .await
                }
                Err(e) => Err(e),
            };
            match sent {
                Ok(s) => m.code_sent = Some(s),
                Err(crate::Error::Domain(d)) => {
                    // A channel that cannot be used at all now (opted out, suppressed, over
                    // budget, country) is not offered; the user's other methods are.
                    if channel_refusal(&d).is_some() {
                        let refused = factor_of(channel);
                        m.methods.retain(|f| *f != refused);
                        m.preferred = m.methods.first().copied();
                    }
                    m.code_error = Some(d);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(FlowView {
            flow_id,
            status,
            expires_at,
            mfa,
            session,
            device_token: None,
            recovery_codes: None,
            username: user.username.clone(),
            practice: FlowPractice::of(a.tenant),
        })
    }

    /// The step an open flow is at, for a page drawn again: nothing is sent or changed;
    /// `code_sent` is the sign-in code still open, if any.
    pub async fn current(&self, id: FlowId) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let mut mfa = match flow.status {
            FlowStatus::PasswordChangeRequired => None,
            _ => {
                let f = facts(&tenant, &user, &flow.state);
                mfa_view(&next_step(&f, &flow.state), f.method)
            }
        };
        if flow.status == FlowStatus::MfaRequired
            && let Some(m) = mfa.as_mut()
        {
            m.code_sent = self
                .store
                .tenant(tenant.id)
                .mfa()
                .open_code(CodeOwner::Flow(id), Purpose::SignIn)
                .await?;
        }
        Ok(FlowView {
            flow_id: flow.id,
            status: flow.status,
            expires_at: flow.expires_at,
            mfa,
            session: None,
            device_token: None,
            recovery_codes: None,
            username: user.username,
            practice: FlowPractice::of(&tenant),
        })
    }
}

impl SignIn<'_> {
    /// `POST /v1/auth/logout`: ends the caller's session.
    pub async fn logout(&self, p: &crate::Principal, meta: &RequestMeta) -> Result<()> {
        let txn = self.store.begin_write().await?;
        self.store.end_session(&txn, p).await?;
        // The tokens issued to applications in this session end with it (oidc.md).
        self.store
            .oidc()
            .revoke_session_tokens(&*txn, (p.tenant.id, p.session_id), self.store.clock().now())
            .await?;
        self.store
            .tenant(p.tenant.id)
            .audit()
            .append_in(
                &txn,
                event(
                    gatehouse_store::audit::actor_of(p),
                    Some(user_target(p.user.id, &p.user.username)),
                    meta,
                    Details::SessionEnded {
                        reason: SessionEnd::Logout,
                    },
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_session(p);
        Ok(())
    }
}
