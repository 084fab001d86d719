//! Enrollment inside a flow (M9, M10, M12): an authenticator app, or an email address or
//! phone number proven by a code; or, when enrollment is only suggested, skipping it.

use super::{Advance, FlowView, SignIn, enroll_step};
use crate::mfa::codes::{
    GuessContext, code_verdict, finish_totp_enrollment, guess, judge_on, send_code, verify_contact,
};
use crate::{Error, RequestMeta, Result};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::{Context, Method};
use gatehouse_domain::ids::FlowId;
use gatehouse_domain::mfa::codes::{Channel, OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, allowed_of, check_label, factor_of};
use gatehouse_domain::mfa::step::Factor;
use gatehouse_domain::mfa::totp::{Enrollment as TotpEnrollment, unix_seconds};
use gatehouse_domain::settings::AllowedMethod;
use gatehouse_domain::signin::FlowStatus;
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::mfa::{CodeOwner, own_destination, parse_destination};
use gatehouse_store::tries::Counter;

impl SignIn<'_> {
    /// `POST /v1/auth/flows/{flow_id}/enroll/totp`: a new authenticator secret, pending.
    pub async fn enroll_totp(&self, id: FlowId, label: Option<String>) -> Result<TotpEnrollment> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let options = enroll_step(&flow, &tenant, &user)?;
        if !options.contains(&AllowedMethod::Totp) {
            return Err(DomainError::MethodNotAllowed(
                "This practice does not allow authenticator apps.".into(),
            )
            .into());
        }
        let label = check_label(label, &user.username)?;
        self.store
            .tenant(tenant.id)
            .mfa()
            .start_totp(user.id, &tenant.name, &label)
            .await
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/totp/confirm`: proves the new authenticator;
    /// the Flow carries the recovery codes, shown this once.
    pub async fn confirm_totp(
        &self,
        id: FlowId,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        enroll_step(&flow, &tenant, &user)?;
        let scope = self.store.tenant(tenant.id);
        let uid = user.id;
        let now = self.store.clock().now();
        let compare = async {
            match scope
                .mfa()
                .confirm_totp(uid, code.trim(), unix_seconds(now))
                .await
            {
                Err(Error::Domain(DomainError::NotFound | DomainError::FlowWrongStep)) => {
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
            method: Method::Totp,
            context: Context::Enrollment,
        };
        let judged = judge_on(scope, Counter::Flow, flow.id.0, compare);
        guess(self.store, scope, &user, at, meta, judged).await?;
        let codes = finish_totp_enrollment(self.store, scope, &user).await?;
        let events = vec![event(
            actor_user(&user),
            Some(user_target(uid, &user.username)),
            meta,
            Details::MfaEnrolled {
                method: Method::Totp,
                recovery_codes: Some(codes.len() as u64),
                to: None,
                context: Context::SignIn,
            },
        )];
        let mut state = flow.state.clone();
        state.prove(Factor::Totp, now);
        // The method changed: decide on the row as it is now.
        let user = self.user(&tenant, &flow).await?;
        let mut view = self
            .advance(Advance::of((&flow, &user, &tenant), state, events), meta)
            .await?;
        view.recovery_codes = Some(codes);
        Ok(view)
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/{email|sms}`: sends a code to the address
    /// being enrolled (the user's own unless another is given).
    pub async fn enroll_channel(
        &self,
        id: FlowId,
        channel: Channel,
        destination: Option<String>,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let options = enroll_step(&flow, &tenant, &user)?;
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
        send_code(
            self.store,
            &tenant,
            &user,
            (CodeOwner::Flow(id), Purpose::Enroll),
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/auth/flows/{flow_id}/enroll/{email|sms}/confirm`: the code proves the
    /// address, which becomes the user's verified contact and method.
    pub async fn confirm_channel(
        &self,
        id: FlowId,
        channel: Channel,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let code = OtpCode::parse(code)?;
        let (flow, user, tenant) = self.open_flow(id).await?;
        enroll_step(&flow, &tenant, &user)?;
        let scope = self.store.tenant(tenant.id);
        let uid = user.id;
        let at = GuessContext {
            method: channel.into(),
            context: Context::Enrollment,
        };
        let checked = guess(self.store, scope, &user, at, meta, async {
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
        let masked = verify_contact(
            self.store,
            scope,
            &user,
            (channel, &checked.destination),
            true,
        )
        .await?;
        let target = Some(user_target(uid, &user.username));
        let events = vec![
            event(
                actor_user(&user),
                target.clone(),
                meta,
                Details::ContactVerified {
                    channel,
                    to: masked.clone(),
                },
            ),
            event(
                actor_user(&user),
                target,
                meta,
                Details::MfaEnrolled {
                    method: channel.into(),
                    recovery_codes: None,
                    to: Some(masked),
                    context: Context::SignIn,
                },
            ),
        ];
        let mut state = flow.state.clone();
        state.prove(factor_of(channel), self.store.clock().now());
        // The user row changed: read it again for the next decision.
        let user = self.user(&tenant, &flow).await?;
        self.advance(Advance::of((&flow, &user, &tenant), state, events), meta)
            .await
    }

    /// `POST /v1/auth/flows/{flow_id}/skip`: declines a suggested enrollment.
    pub async fn skip(&self, id: FlowId, meta: &RequestMeta) -> Result<FlowView> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        if flow.status != FlowStatus::MfaEnrollmentSuggested {
            return Err(DomainError::FlowWrongStep.into());
        }
        let mut state = flow.state.clone();
        state.skipped = true;
        let events = vec![event(
            actor_user(&user),
            Some(user_target(user.id, &user.username)),
            meta,
            Details::MfaSkipped {},
        )];
        self.advance(Advance::of((&flow, &user, &tenant), state, events), meta)
            .await
    }
}
