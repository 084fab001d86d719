//! The user's own second factors (`/v1/me/mfa...`, `/v1/me/recovery-codes`,
//! `/v1/me/contacts/...`), where the practice lets users manage them (self-service) and,
//! for a change that weakens or replaces a factor, after a step-up (M11).

use super::codes::{
    GuessContext, code_verdict, finish_totp_enrollment, guess, judge_on, send_code, verify_contact,
};
use super::{Mfa, allows, check_method, require_self_service};
use crate::{Error, Principal, RequestMeta, Result};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Details;
use gatehouse_domain::audit::details::{By, Context, Method, MfaReset, UserUpdate};
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::mfa::codes::{Channel, OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, check_label};
use gatehouse_domain::mfa::totp::{Enrollment as TotpEnrollment, unix_seconds};
use gatehouse_store::User;
use gatehouse_store::audit::{actor_of, event, user_target};
use gatehouse_store::mfa::{CodeOwner, own_destination, parse_destination};
use gatehouse_store::tries::Counter;

impl Mfa<'_> {
    /// `PUT /v1/me/mfa`: the user picks a method already proven (self-service + step-up).
    pub async fn set_own_method(
        &self,
        p: &Principal,
        method: UserMethod,
        meta: &RequestMeta,
    ) -> Result<User> {
        require_self_service(p)?;
        crate::require_step_up(self.store, p)?;
        let user = self.own_record(p).await?;
        check_method(&p.tenant, method)?;
        match method {
            UserMethod::Email => {
                own_destination(&user, Channel::Email, true)?;
            }
            UserMethod::Sms => {
                own_destination(&user, Channel::Sms, true)?;
            }
            UserMethod::Totp if !user.totp_enrolled => {
                return Err(DomainError::Conflict(
                    "Enroll an authenticator first (POST /v1/me/mfa/totp).".into(),
                )
                .into());
            }
            _ => {}
        }
        let scope = self.store.tenant(p.tenant.id);
        let txn = self.store.begin_write().await?;
        scope.users().set_method(&txn, p.user.id, method).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(p),
                    Some(user_target(p.user.id, &p.user.username)),
                    meta,
                    Details::UserUpdated(UserUpdate::Mfa {
                        mfa_method: method,
                        mfa_enrollment: None,
                        by: Some(By::Themselves),
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_user_sessions(p.user.id);
        self.own_user(p).await
    }

    /// `POST /v1/me/mfa/totp`: starts enrolling an authenticator.
    pub async fn start_own_totp(
        &self,
        p: &Principal,
        label: Option<String>,
    ) -> Result<TotpEnrollment> {
        require_self_service(p)?;
        crate::require_step_up(self.store, p)?;
        if !allows(&p.tenant, UserMethod::Totp) {
            return Err(DomainError::MethodNotAllowed(
                "This practice does not allow authenticator apps.".into(),
            )
            .into());
        }
        let label = check_label(label, &p.user.username)?;
        self.store
            .tenant(p.tenant.id)
            .mfa()
            .start_totp(p.user.id, &p.tenant.name, &label)
            .await
    }

    /// `POST /v1/me/mfa/totp/confirm`: proves the new authenticator; answers the recovery
    /// codes, shown this once. Completing the enrollment counts as a second factor.
    pub async fn confirm_own_totp(
        &self,
        p: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>> {
        require_self_service(p)?;
        let scope = self.store.tenant(p.tenant.id);
        let user = self.own_record(p).await?;
        let now = self.store.clock().now();
        let compare = async {
            match scope
                .mfa()
                .confirm_totp(p.user.id, code.trim(), unix_seconds(now))
                .await
            {
                Err(Error::Domain(DomainError::NotFound | DomainError::FlowWrongStep)) => {
                    Err(DomainError::Conflict(
                        "No authenticator enrollment is under way; start one with POST /v1/me/mfa/totp."
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
        let judged = judge_on(scope, Counter::Session, p.session_id.0, compare);
        guess(self.store, scope, &user, at, meta, judged).await?;
        let codes = finish_totp_enrollment(self.store, scope, &user).await?;
        self.store.mark_session_verified(p).await?;
        scope
            .audit()
            .record(event(
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                Details::MfaEnrolled {
                    method: Method::Totp,
                    recovery_codes: Some(codes.len() as u64),
                    to: None,
                    context: Context::SelfService,
                },
            ))
            .await?;
        Ok(codes)
    }

    /// `DELETE /v1/me/mfa/totp`: removes the user's authenticator and recovery codes.
    pub async fn remove_own_totp(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        require_self_service(p)?;
        crate::require_step_up(self.store, p)?;
        let scope = self.store.tenant(p.tenant.id);
        if !scope.mfa().remove_totp(p.user.id).await? {
            return Err(DomainError::NotFound.into());
        }
        scope.mfa().remove_recovery_codes(p.user.id).await?;
        let txn = self.store.begin_write().await?;
        if p.user.mfa_method == UserMethod::Totp {
            scope
                .users()
                .set_method(&txn, p.user.id, UserMethod::None)
                .await?;
        }
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_of(p),
                    Some(user_target(p.user.id, &p.user.username)),
                    meta,
                    Details::MfaReset(MfaReset::Own {
                        removed: Method::Totp,
                        by: By::Themselves,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.store.forget_user_sessions(p.user.id);
        Ok(())
    }

    /// `POST /v1/me/recovery-codes`: a new set of recovery codes; the old ones die.
    pub async fn regenerate_own_recovery_codes(
        &self,
        p: &Principal,
        meta: &RequestMeta,
    ) -> Result<Vec<String>> {
        crate::require_step_up(self.store, p)?;
        let scope = self.store.tenant(p.tenant.id);
        if !scope.mfa().totp_enrolled(p.user.id).await? {
            return Err(DomainError::Conflict(
                "Recovery codes come with an authenticator; enroll one first.".into(),
            )
            .into());
        }
        let codes = scope.mfa().replace_recovery_codes(p.user.id).await?;
        scope
            .audit()
            .record(event(
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                Details::RecoveryCodesRegenerated {
                    count: codes.len() as u64,
                },
            ))
            .await?;
        self.store.forget_user_sessions(p.user.id);
        Ok(codes)
    }

    /// `POST /v1/me/contacts/{email|phone}`: sends a code to a new (or unproven) address.
    pub async fn start_own_contact(
        &self,
        p: &Principal,
        channel: Channel,
        value: &str,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        crate::require_step_up(self.store, p)?;
        let destination = parse_destination(channel, value, "value")?;
        let user = self.own_record(p).await?;
        send_code(
            self.store,
            &p.tenant,
            &user,
            (CodeOwner::Session(p.session_id), Purpose::Contact),
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/me/contacts/{email|phone}/verify`: the code proves the address, which
    /// becomes the user's verified email or phone.
    pub async fn verify_own_contact(
        &self,
        p: &Principal,
        channel: Channel,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<User> {
        let code = OtpCode::parse(code)?;
        let scope = self.store.tenant(p.tenant.id);
        let user = self.own_record(p).await?;
        let at = GuessContext {
            method: channel.into(),
            context: Context::Contact,
        };
        let checked = guess(self.store, scope, &user, at, meta, async {
            let checked = scope
                .mfa()
                .check_code_detail(CodeOwner::Session(p.session_id), Purpose::Contact, &code)
                .await?
                .filter(|c| c.channel == channel);
            Ok(code_verdict(
                checked,
                DomainError::Conflict(
                    "No verification code has been sent for this contact; request one first."
                        .into(),
                ),
            ))
        })
        .await?;
        let masked = verify_contact(
            self.store,
            scope,
            &user,
            (channel, &checked.destination),
            false,
        )
        .await?;
        scope
            .audit()
            .record(event(
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                Details::ContactVerified {
                    channel,
                    to: masked,
                },
            ))
            .await?;
        self.own_user(p).await
    }
}
