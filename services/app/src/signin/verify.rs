//! The second factor of a flow at `mfa_required` (M1-M8): sending (or resending) a code,
//! and proving a code, an authenticator code or a recovery code, optionally remembering
//! this computer.

use super::{Advance, FlowView, SignIn, verify_step};
use crate::mfa::codes::{GuessContext, code_verdict, guess, judge_on, send_code};
use crate::{RequestMeta, Result};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::Context;
use gatehouse_domain::ids::FlowId;
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::mfa::codes::{OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, Proof, allowed_of, factor_of};
use gatehouse_domain::mfa::step::Factor;
use gatehouse_domain::mfa::totp::unix_seconds;
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::mfa::{CodeOwner, own_destination};
use gatehouse_store::tries::Counter;
use secrecy::{ExposeSecret, SecretString};

/// `POST .../verify` as submitted. The code stays secret (and out of `Debug`) until it
/// is compared.
#[derive(Debug)]
pub struct VerifyInput {
    pub method: Proof,
    pub code: SecretString,
    pub remember_device: bool,
}

impl SignIn<'_> {
    /// `POST /v1/auth/flows/{flow_id}/code`: sends (or resends) a sign-in code.
    pub async fn send_code(
        &self,
        id: FlowId,
        channel: Channel,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let (flow, user, tenant) = self.open_flow(id).await?;
        let factors = verify_step(&flow, &tenant, &user)?;
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
        send_code(
            self.store,
            &tenant,
            &user,
            (CodeOwner::Flow(id), Purpose::SignIn),
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/auth/flows/{flow_id}/verify`: proves the second factor.
    pub async fn verify(
        &self,
        id: FlowId,
        input: VerifyInput,
        meta: &RequestMeta,
    ) -> Result<FlowView> {
        let proof = input.method;
        let (flow, user, tenant) = self.open_flow(id).await?;
        let factors = verify_step(&flow, &tenant, &user)?;
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
        let scope = self.store.tenant(tenant.id);
        let uid = user.id;
        let now = self.store.clock().now();
        let mut events = Vec::new();
        let mut channel = None;
        let at = GuessContext {
            method: proof.into(),
            context: Context::SignIn,
        };
        match proof {
            Proof::Code => {
                let code = OtpCode::parse(input.code.expose_secret())?;
                let checked = guess(self.store, scope, &user, at, meta, async {
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
                channel = Some(checked.channel);
            }
            Proof::Totp | Proof::RecoveryCode => {
                let compare = async {
                    if proof == Proof::Totp {
                        scope
                            .mfa()
                            .verify_totp(uid, input.code.expose_secret().trim(), unix_seconds(now))
                            .await
                    } else {
                        scope
                            .mfa()
                            .use_recovery_code(uid, input.code.expose_secret())
                            .await
                    }
                };
                let judged = judge_on(scope, Counter::Flow, flow.id.0, compare);
                guess(self.store, scope, &user, at, meta, judged).await?;
            }
        }
        let target = Some(user_target(uid, &user.username));
        if proof == Proof::RecoveryCode {
            let left = scope.mfa().recovery_codes_remaining(uid).await?;
            events.push(event(
                actor_user(&user),
                target.clone(),
                meta,
                Details::RecoveryCodeUsed {
                    remaining: u64::from(left),
                },
            ));
        }
        events.push(event(
            actor_user(&user),
            target.clone(),
            meta,
            Details::MfaVerified {
                method: proof.into(),
                context: Context::SignIn,
                channel,
            },
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
                    actor_user(&user),
                    target,
                    meta,
                    Details::DeviceRemembered { expires_at: until },
                ));
                device_token = Some(token);
            }
        }
        let mut state = flow.state.clone();
        let factor = match (proof, channel) {
            (Proof::Totp, _) => Factor::Totp,
            (Proof::RecoveryCode, _) => Factor::RecoveryCode,
            (Proof::Code, Some(c)) => factor_of(c),
            (Proof::Code, None) => Factor::Sms,
        };
        state.prove(factor, now);
        let mut view = self
            .advance(Advance::of((&flow, &user, &tenant), state, events), meta)
            .await?;
        view.device_token = device_token;
        Ok(view)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A submitted code never reaches a log through `Debug` (what a `tracing` field or an
    /// error report prints).
    #[test]
    fn m13_a_submitted_code_stays_out_of_debug_output() {
        let input = VerifyInput {
            method: Proof::Totp,
            code: SecretString::from("314159".to_owned()),
            remember_device: false,
        };
        let shown = format!("{input:?}");
        assert!(!shown.contains("314159"), "{shown}");
        assert!(shown.contains("Totp"), "{shown}");
    }
}
