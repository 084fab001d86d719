//! Step-up (M11): proving a second factor again within a session before a credential
//! action; the session then counts as verified for 15 minutes.

use super::codes::{GuessContext, code_verdict, guess, judge_on, send_code};
use super::{Mfa, requires_any_mfa};
use crate::passwords::judge_own_password;
use crate::{Principal, RequestMeta, Result};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::{Context, Method, SigninFailure};
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_domain::mfa::codes::{OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, Proof, StepUpProof, factor_of};
use gatehouse_domain::mfa::totp::unix_seconds;
use gatehouse_store::audit::{actor_of, event, user_target};
use gatehouse_store::mfa::{CodeOwner, own_destination};
use gatehouse_store::tries::Counter;
use secrecy::SecretString;

impl Mfa<'_> {
    /// `POST /v1/me/step-up/code`: a step-up code to one of the user's proven channels.
    pub async fn step_up_code(
        &self,
        p: &Principal,
        channel: Channel,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let user = self.own_record(p).await?;
        let destination = own_destination(&user, channel, true)?;
        if !user
            .mfa_facts(&p.tenant)
            .usable_factors()
            .contains(&factor_of(channel))
        {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} codes are not one of this account's methods.",
                channel.as_str()
            ))
            .into());
        }
        send_code(
            self.store,
            &p.tenant,
            &user,
            (CodeOwner::Session(p.session_id), Purpose::StepUp),
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/me/step-up`: proves a second factor now; refreshes `mfa_verified_at`.
    pub async fn step_up(
        &self,
        p: &Principal,
        method: StepUpProof,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        let Some(proof) = method.second_factor() else {
            return self.step_up_with_password(p, code, meta).await;
        };
        let user = self.own_record(p).await?;
        let factors = user.mfa_facts(&p.tenant).usable_factors();
        if !proof.usable(&factors) {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} is not one of this account's methods.",
                proof.as_str()
            ))
            .into());
        }
        let scope = self.store.tenant(p.tenant.id);
        let at = GuessContext {
            method: proof.into(),
            context: Context::StepUp,
        };
        match proof {
            Proof::Code => {
                let code = OtpCode::parse(code)?;
                guess(self.store, scope, &user, at, meta, async {
                    let checked = scope
                        .mfa()
                        .check_code_detail(CodeOwner::Session(p.session_id), Purpose::StepUp, &code)
                        .await?;
                    Ok(code_verdict(
                        checked,
                        DomainError::Conflict(
                            "No step-up code has been sent; request one first.".into(),
                        ),
                    ))
                })
                .await?;
            }
            Proof::Totp | Proof::RecoveryCode => {
                let now = self.store.clock().now();
                let compare = async {
                    if proof == Proof::Totp {
                        scope
                            .mfa()
                            .verify_totp(p.user.id, code.trim(), unix_seconds(now))
                            .await
                    } else {
                        scope.mfa().use_recovery_code(p.user.id, code).await
                    }
                };
                let judged = judge_on(scope, Counter::Session, p.session_id.0, compare);
                guess(self.store, scope, &user, at, meta, judged).await?;
            }
        }
        self.store.mark_session_verified(p).await?;
        let target = Some(user_target(p.user.id, &p.user.username));
        if proof == Proof::RecoveryCode {
            let left = scope.mfa().recovery_codes_remaining(p.user.id).await?;
            scope
                .audit()
                .record(event(
                    actor_of(p),
                    target.clone(),
                    meta,
                    Details::RecoveryCodeUsed {
                        remaining: u64::from(left),
                    },
                ))
                .await?;
            self.store.forget_user_sessions(p.user.id);
        }
        scope
            .audit()
            .record(event(
                actor_of(p),
                target,
                meta,
                Details::MfaVerified {
                    method: proof.into(),
                    context: Context::StepUp,
                    channel: None,
                },
            ))
            .await
    }

    /// `POST /v1/me/step-up` with `{"method": "password"}` (M11): only for a user with no
    /// usable second factor in a practice whose MFA policy is `off`; anyone else steps up
    /// with a second factor, or enrolls one first. A wrong password counts like a failed
    /// sign-in.
    async fn step_up_with_password(
        &self,
        p: &Principal,
        password: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        let user = self.own_record(p).await?;
        if !user.mfa_facts(&p.tenant).usable_factors().is_empty() {
            return Err(DomainError::MethodNotAllowed(
                "This account has a second factor: step up with it, not the password.".into(),
            )
            .into());
        }
        if requires_any_mfa(&p.tenant) {
            return Err(DomainError::MethodNotAllowed(
                "This practice asks for a second factor: enroll one before this action.".into(),
            )
            .into());
        }
        let secret = SecretString::from(password.to_owned());
        if !judge_own_password(
            self.store,
            p,
            secret,
            meta,
            SigninFailure::WrongStepUpPassword,
        )
        .await?
        {
            return Err(
                DomainError::Validation(vec![gatehouse_domain::FieldError::new(
                    "code",
                    "the password is not correct",
                )])
                .into(),
            );
        }
        self.store.mark_session_verified(p).await?;
        self.store
            .tenant(p.tenant.id)
            .audit()
            .record(event(
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                Details::MfaVerified {
                    method: Method::Password,
                    context: Context::StepUp,
                    channel: None,
                },
            ))
            .await
    }
}
