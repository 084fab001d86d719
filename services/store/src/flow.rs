//! The second-factor steps of the sign-in flow (api.md "Sign-in flow"; M1-M10).
//!
//! After the password (and any password change) the flow asks `decide()` what comes
//! next: verification (unless a remembered device of this user or a trusted network
//! applies), then enrollment if the tenant's policy or the user's mode asks for it. What
//! the flow has learnt so far (the bypass found at the password step, the second factor
//! proven, a skipped suggestion) is kept in `sign_in_flows.state`; wrong authenticator and
//! recovery codes are counted on the flow row (`mfa_failures`), one-time codes on their
//! challenge.

use crate::audit::actor_user;
use crate::audit::event;
use crate::audit::user_target;
use crate::entities::{sign_in_flows, users};
use crate::error::StoreError;
use crate::guess::{GuessContext, code_verdict};
use crate::mfa::{CodeOwner, CodeRequest, Destination};
use crate::mfa::{own_destination, parse_destination};
use crate::records::Tenant;
use crate::scope::TenantScope;
use crate::signin::{Advance, FlowView, flow_state};
use crate::tries::Counter;
use crate::{RequestMeta, Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Action;
use gatehouse_domain::ids::{FlowId, UserId};
use gatehouse_domain::mfa::codes::{Channel, OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{
    CodeSent, FlowState, Proof, allowed_of, channel_refusal, check_label, factor_of, next_step,
    parse_channel,
};
use gatehouse_domain::mfa::step::{Factor, Facts, Step};
use gatehouse_domain::mfa::totp::Enrollment as TotpEnrollment;
use gatehouse_domain::mfa::{Enrollment, UserMethod};
use gatehouse_domain::settings::AllowedMethod;
use gatehouse_domain::signin::FlowStatus;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// `POST .../verify` as submitted. The code stays secret (and out of `Debug`) until it
/// is compared.
#[derive(Debug)]
pub struct VerifyInput {
    pub method: String,
    pub code: SecretString,
    pub remember_device: bool,
}

impl Store {
    /// What `decide()` needs about this user, given the flow's state so far.
    pub(crate) async fn mfa_facts(
        &self,
        tenant: &Tenant,
        user: &users::Model,
        bypass: Option<gatehouse_domain::mfa::step::Bypass>,
        verified: bool,
    ) -> Result<Facts> {
        let uid = UserId(user.id);
        let corrupt = |what: &str| StoreError::Corrupt(format!("user {}: {what}", user.id));
        let (totp_enrolled, recovery_codes_remaining) =
            self.tenant(tenant.id).mfa().second_factors(uid).await?;
        Ok(Facts {
            policy: tenant.settings.mfa_policy,
            allowed: tenant.settings.allowed_methods.clone(),
            is_operator: tenant.is_operator,
            method: UserMethod::parse(&user.mfa_method).map_err(|_| corrupt("mfa_method"))?,
            enrollment: Enrollment::parse(&user.mfa_enrollment)
                .map_err(|_| corrupt("mfa_enrollment"))?,
            totp_enrolled,
            email_verified: user.email_verified && user.email.is_some(),
            phone_verified: user.phone_verified && user.phone.is_some(),
            recovery_codes_remaining,
            bypass,
            verified,
        })
    }

    /// Issues a code to `destination` and queues its delivery. A refusal before any
    /// provider (the throttle) is audited as `mfa.code_refused` and answered as an error.
    pub(crate) async fn send_code(
        &self,
        tenant: &Tenant,
        user: &users::Model,
        owner: CodeOwner,
        purpose: Purpose,
        destination: Destination,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let scope = self.tenant(tenant.id);
        let issued = scope
            .mfa()
            .issue_code(CodeRequest {
                user: UserId(user.id),
                owner,
                purpose,
                destination: destination.clone(),
                ttl_seconds: tenant.settings.code_ttl_seconds,
            })
            .await;
        let issued = match issued {
            Ok(i) => i,
            Err(StoreError::Domain(d)) => {
                let reason = match &d {
                    DomainError::RateLimited { .. } => "rate_limited",
                    other => channel_refusal(other).unwrap_or("refused"),
                };
                scope
                    .audit()
                    .record(event(
                        Action::MfaCodeRefused,
                        actor_user(user),
                        Some(user_target(UserId(user.id), &user.username)),
                        meta,
                        json!({
                            "channel": match destination { Destination::Email(_) => "email", Destination::Sms(_) => "sms" },
                            "to": destination.masked(),
                            "purpose": purpose.as_str(),
                            "reason": reason,
                        }),
                    ))
                    .await?;
                return Err(d.into());
            }
            Err(e) => return Err(e),
        };
        let sent = CodeSent {
            channel: issued.channel,
            to: issued.to_masked.clone(),
            expires_at: issued.expires_at,
        };
        self.enqueue_send(issued.job).await;
        Ok(sent)
    }

    /// The factors the flow's user can prove now, or `FlowWrongStep` unless the flow
    /// is at `mfa_required`.
    async fn verify_step(
        &self,
        flow: &sign_in_flows::Model,
        tenant: &Tenant,
        user: &users::Model,
        state: &FlowState,
    ) -> Result<Vec<Factor>> {
        if FlowStatus::parse(&flow.status) != Some(FlowStatus::MfaRequired) {
            return Err(DomainError::FlowWrongStep.into());
        }
        let facts = self
            .mfa_facts(tenant, user, state.bypass, state.verified_at.is_some())
            .await?;
        match next_step(&facts, state) {
            Step::Verify { factors, .. } => Ok(factors),
            _ => Err(DomainError::FlowWrongStep.into()),
        }
    }

    /// The enrollment options of a flow at an enrollment step.
    async fn enroll_step(
        &self,
        flow: &sign_in_flows::Model,
        tenant: &Tenant,
        user: &users::Model,
        state: &FlowState,
    ) -> Result<Vec<AllowedMethod>> {
        if !matches!(
            FlowStatus::parse(&flow.status),
            Some(FlowStatus::MfaEnrollmentRequired | FlowStatus::MfaEnrollmentSuggested)
        ) {
            return Err(DomainError::FlowWrongStep.into());
        }
        let facts = self
            .mfa_facts(tenant, user, state.bypass, state.verified_at.is_some())
            .await?;
        match next_step(&facts, state) {
            Step::EnrollRequired { options } | Step::EnrollSuggested { options } => Ok(options),
            _ => Err(DomainError::FlowWrongStep.into()),
        }
    }

    /// `POST /v1/auth/flows/{flow_id}/code`: sends (or resends) a sign-in code.
    pub async fn flow_send_code(
        &self,
        id: FlowId,
        channel: &str,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let channel = parse_channel(channel, "channel")?;
        let (flow, user, tenant) = self.open_flow(id).await?;
        let state = flow_state(&flow)?;
        let factors = self.verify_step(&flow, &tenant, &user, &state).await?;
        if !tenant
            .settings
            .allowed_methods
            .contains(&allowed_of(channel))
        {
            return Err(DomainError::MethodNotAllowed(format!(
                "This practice does not allow {} codes.",
                channel.as_str()
            ))
            .into());
        }
        // Refusals name the missing or unproven address before anything else.
        let destination = own_destination(&user, channel, true)?;
        if !factors.contains(&factor_of(channel)) {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} codes are not one of this account's methods.",
                channel.as_str()
            ))
            .into());
        }
        self.send_code(
            &tenant,
            &user,
            CodeOwner::Flow(id),
            Purpose::SignIn,
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/auth/flows/{flow_id}/verify`: proves the second factor.
    pub async fn flow_verify(
        &self,
        id: FlowId,
        input: VerifyInput,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let proof = Proof::parse(&input.method)?;
        let (flow, user, tenant) = self.open_flow(id).await?;
        let mut state = flow_state(&flow)?;
        let factors = self.verify_step(&flow, &tenant, &user, &state).await?;
        if !proof.usable(&factors) {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} is not one of this account's methods; use one of: {}.",
                proof.as_str(),
                factors
                    .iter()
                    .map(|f| f.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        }
        let scope = self.tenant(tenant.id);
        let uid = UserId(user.id);
        let now = self.inner.clock.now();
        let mut events = Vec::new();
        let mut details = json!({"method": proof.as_str(), "context": "sign_in"});
        let at = GuessContext {
            method: proof.as_str(),
            context: "sign_in",
        };
        match proof {
            Proof::Code => {
                let code = OtpCode::parse(input.code.expose_secret())?;
                let checked = self
                    .guess(scope, &user, at, meta, async {
                        let checked = scope
                            .mfa()
                            .check_code_detail(CodeOwner::Flow(id), Purpose::SignIn, &code)
                            .await?;
                        Ok(code_verdict(
                            checked,
                            DomainError::Conflict(
                                "No code has been sent in this sign-in; request one first.".into(),
                            ),
                        ))
                    })
                    .await?;
                details["channel"] = json!(checked.channel.as_str());
            }
            Proof::Totp | Proof::RecoveryCode => {
                let compare = async {
                    if proof == Proof::Totp {
                        scope
                            .mfa()
                            .verify_totp(uid, input.code.expose_secret().trim(), unix_now(now))
                            .await
                    } else {
                        scope
                            .mfa()
                            .use_recovery_code(uid, input.code.expose_secret())
                            .await
                    }
                };
                self.guess(
                    scope,
                    &user,
                    at,
                    meta,
                    self.judge_on(scope, Counter::Flow, flow.id, compare),
                )
                .await?;
            }
        }
        let target = Some(user_target(uid, &user.username));
        if proof == Proof::RecoveryCode {
            let left = scope.mfa().recovery_codes_remaining(uid).await?;
            events.push(event(
                Action::RecoveryCodeUsed,
                actor_user(&user),
                target.clone(),
                meta,
                json!({"remaining": left}),
            ));
        }
        events.push(event(
            Action::MfaVerified,
            actor_user(&user),
            target.clone(),
            meta,
            details,
        ));
        let mut device_token = None;
        if input.remember_device {
            let label = meta.user_agent_trimmed();
            if let Some((token, until)) = scope
                .mfa()
                .remember_device(uid, label, tenant.settings.remember_device_hours)
                .await?
            {
                events.push(event(
                    Action::DeviceRemembered,
                    actor_user(&user),
                    target,
                    meta,
                    json!({"expires_at": until.to_rfc3339()}),
                ));
                device_token = Some(token);
            }
        }
        state.verified_at = Some(now);
        let mut view = self
            .advance(
                Advance {
                    tenant: &tenant,
                    user: &user,
                    flow: Some(&flow),
                    state,
                    password_pending: false,
                    new_hash: None,
                    events,
                },
                meta,
            )
            .await?;
        view.device_token = device_token;
        Ok(view)
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/totp`: a new authenticator secret, pending.
    pub async fn flow_enroll_totp(
        &self,
        id: FlowId,
        label: Option<String>,
    ) -> Result<TotpEnrollment> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let state = flow_state(&flow)?;
        let options = self.enroll_step(&flow, &tenant, &user, &state).await?;
        if !options.contains(&AllowedMethod::Totp) {
            return Err(DomainError::MethodNotAllowed(
                "This practice does not allow authenticator apps.".into(),
            )
            .into());
        }
        let label = check_label(label, &user.username)?;
        self.tenant(tenant.id)
            .mfa()
            .start_totp(UserId(user.id), &tenant.name, &label)
            .await
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/totp/confirm`: proves the new authenticator;
    /// the Flow carries the recovery codes, shown this once.
    pub async fn flow_confirm_totp(
        &self,
        id: FlowId,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let mut state = flow_state(&flow)?;
        self.enroll_step(&flow, &tenant, &user, &state).await?;
        let scope = self.tenant(tenant.id);
        let uid = UserId(user.id);
        let now = self.inner.clock.now();
        let compare = async {
            match scope
                .mfa()
                .confirm_totp(uid, code.trim(), unix_now(now))
                .await
            {
                Err(StoreError::Domain(DomainError::NotFound | DomainError::FlowWrongStep)) => {
                    Err(DomainError::Conflict(
                        "No authenticator enrollment is under way; start one with enroll/totp."
                            .into(),
                    )
                    .into())
                }
                other => other,
            }
        };
        let at = GuessContext {
            method: "totp",
            context: "enrollment",
        };
        self.guess(
            scope,
            &user,
            at,
            meta,
            self.judge_on(scope, Counter::Flow, flow.id, compare),
        )
        .await?;
        let codes = self.finish_totp_enrollment(scope, &user).await?;
        let events = vec![event(
            Action::MfaEnrolled,
            actor_user(&user),
            Some(user_target(uid, &user.username)),
            meta,
            json!({"method": "totp", "recovery_codes": codes.len(), "context": "sign_in"}),
        )];
        state.verified_at = Some(now);
        // The method changed: decide on the row as it is now.
        let user = scope
            .users()
            .find_model(&self.inner.db, &crate::scope::UserRef::Id(uid.0))
            .await?
            .ok_or(DomainError::NotFound)?;
        let mut view = self
            .advance(
                Advance {
                    tenant: &tenant,
                    user: &user,
                    flow: Some(&flow),
                    state,
                    password_pending: false,
                    new_hash: None,
                    events,
                },
                meta,
            )
            .await?;
        view.recovery_codes = Some(codes);
        Ok(view)
    }

    /// After a proven authenticator: it becomes the user's method and the recovery codes
    /// are (re)issued.
    pub(crate) async fn finish_totp_enrollment(
        &self,
        scope: TenantScope<'_>,
        user: &users::Model,
    ) -> Result<Vec<String>> {
        let uid = UserId(user.id);
        scope
            .users()
            .set_method(&self.inner.db, uid, UserMethod::Totp)
            .await?;
        let codes = scope.mfa().replace_recovery_codes(uid).await?;
        self.inner.cache.invalidate_user(uid);
        Ok(codes)
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/{email|sms}`: sends a code to the address
    /// being enrolled (the user's own unless another is given).
    pub async fn flow_enroll_channel(
        &self,
        id: FlowId,
        channel: Channel,
        destination: Option<String>,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let state = flow_state(&flow)?;
        let options = self.enroll_step(&flow, &tenant, &user, &state).await?;
        if !options.contains(&allowed_of(channel)) {
            return Err(DomainError::MethodNotAllowed(format!(
                "This practice does not allow {} codes.",
                channel.as_str()
            ))
            .into());
        }
        let destination = match destination.as_deref().map(str::trim) {
            Some(d) if !d.is_empty() => parse_destination(channel, d, "destination")?,
            _ => own_destination(&user, channel, false)?,
        };
        self.send_code(
            &tenant,
            &user,
            CodeOwner::Flow(id),
            Purpose::Enroll,
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/{email|sms}/confirm`: the code proves the
    /// address, which becomes the user's verified contact and method.
    pub async fn flow_confirm_channel(
        &self,
        id: FlowId,
        channel: Channel,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let code = OtpCode::parse(code)?;
        let (flow, user, tenant) = self.open_flow(id).await?;
        let mut state = flow_state(&flow)?;
        self.enroll_step(&flow, &tenant, &user, &state).await?;
        let scope = self.tenant(tenant.id);
        let uid = UserId(user.id);
        let at = GuessContext {
            method: channel.as_str(),
            context: "enrollment",
        };
        let checked = self
            .guess(scope, &user, at, meta, async {
                let checked = scope
                    .mfa()
                    .check_code_detail(CodeOwner::Flow(id), Purpose::Enroll, &code)
                    .await?
                    .filter(|c| c.channel == channel);
                Ok(code_verdict(
                    checked,
                    DomainError::Conflict(format!(
                        "No {} enrollment code has been sent in this sign-in; request one first.",
                        channel.as_str()
                    )),
                ))
            })
            .await?;
        let masked = self
            .verify_contact(scope, &user, channel, &checked.destination, true)
            .await?;
        let target = Some(user_target(uid, &user.username));
        let events = vec![
            event(
                Action::ContactVerified,
                actor_user(&user),
                target.clone(),
                meta,
                json!({"channel": channel.as_str(), "to": masked}),
            ),
            event(
                Action::MfaEnrolled,
                actor_user(&user),
                target,
                meta,
                json!({"method": channel.as_str(), "to": masked, "context": "sign_in"}),
            ),
        ];
        state.verified_at = Some(self.inner.clock.now());
        // The user row changed: read it again for the next decision.
        let user = scope
            .users()
            .find_model(&self.inner.db, &crate::scope::UserRef::Id(uid.0))
            .await?
            .ok_or(DomainError::NotFound)?;
        self.advance(
            Advance {
                tenant: &tenant,
                user: &user,
                flow: Some(&flow),
                state,
                password_pending: false,
                new_hash: None,
                events,
            },
            meta,
        )
        .await
    }

    /// Records a proven address as the user's verified contact; with `as_method`, also
    /// as their MFA method. Answers the masked address.
    pub(crate) async fn verify_contact(
        &self,
        scope: TenantScope<'_>,
        user: &users::Model,
        channel: Channel,
        destination: &str,
        as_method: bool,
    ) -> Result<String> {
        let uid = UserId(user.id);
        let dest = parse_destination(channel, destination, "destination")?;
        scope
            .users()
            .set_verified_contact(&self.inner.db, uid, &dest, as_method)
            .await?;
        self.inner.cache.invalidate_user(uid);
        Ok(dest.masked())
    }

    /// `POST /v1/auth/flows/{flow_id}/skip`: declines a suggested enrollment.
    pub async fn flow_skip(&self, id: FlowId, meta: &RequestMeta) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let mut state = flow_state(&flow)?;
        if FlowStatus::parse(&flow.status) != Some(FlowStatus::MfaEnrollmentSuggested) {
            return Err(DomainError::FlowWrongStep.into());
        }
        state.skipped = true;
        let events = vec![event(
            Action::MfaSkipped,
            actor_user(&user),
            Some(user_target(UserId(user.id), &user.username)),
            meta,
            json!({}),
        )];
        self.advance(
            Advance {
                tenant: &tenant,
                user: &user,
                flow: Some(&flow),
                state,
                password_pending: false,
                new_hash: None,
                events,
            },
            meta,
        )
        .await
    }
}

/// Seconds since the epoch, for TOTP.
pub(crate) fn unix_now(now: DateTime<Utc>) -> u64 {
    u64::try_from(now.timestamp()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A submitted code never reaches a log through `Debug` (what a `tracing` field or an
    /// error report prints).
    #[test]
    fn m13_a_submitted_code_stays_out_of_debug_output() {
        let input = VerifyInput {
            method: "totp".into(),
            code: SecretString::from("314159".to_owned()),
            remember_device: false,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("314159"), "{shown}");
        assert!(shown.contains("totp"), "{shown}");
    }
}
