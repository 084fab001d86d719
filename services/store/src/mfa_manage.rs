//! Managing second factors outside sign-in: the user's own (`/v1/me/...`: method,
//! authenticator, recovery codes, contacts, step-up, devices) and an admin's
//! (`.../users/{user_id}/mfa`, devices, trusted networks). Each change is audited
//! without codes or secrets.

use crate::audit::{actor_of, user_target};
use crate::audit::{actor_user, event};
use crate::entities::{sessions, users};
use crate::guess::{GuessContext, code_verdict};
use crate::mfa::{CodeOwner, CodeRequest, Destination, Device, TrustedNetwork};
use crate::mfa::{own_destination, parse_destination};
use crate::records::{Principal, Tenant, User};
use crate::scope::{TenantScope, UserRef};
use crate::tries::Counter;
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::Action;
use gatehouse_domain::ids::UserId;
use gatehouse_domain::mfa::codes::{Channel, OtpCode, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, Proof, channel_refusal, parse_channel};
use gatehouse_domain::mfa::totp::Enrollment as TotpEnrollment;
use gatehouse_domain::mfa::totp::unix_seconds as unix_now;
use gatehouse_domain::mfa::{Enrollment, STEP_UP_MINUTES, UserMethod};
use gatehouse_domain::networks::Cidr;
use gatehouse_domain::settings::{AllowedMethod, MfaPolicy};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use std::net::IpAddr;
use uuid::Uuid;

/// A trusted network as an admin submits it.
#[derive(Debug, Default)]
pub struct NewNetwork {
    pub cidr: Option<String>,
    pub my_ip: bool,
    pub description: Option<String>,
    pub user_id: Option<Uuid>,
}

fn allows(tenant: &Tenant, method: UserMethod) -> bool {
    let m = match method {
        UserMethod::None => return true,
        UserMethod::Email => AllowedMethod::Email,
        UserMethod::Sms => AllowedMethod::Sms,
        UserMethod::Totp => AllowedMethod::Totp,
    };
    tenant.settings.allowed_methods.contains(&m)
}

/// Whether the practice asks anything of its users' second factors (`suggest` or
/// `require`; the operator tenant always requires one).
fn requires_any_mfa(tenant: &Tenant) -> bool {
    tenant.is_operator || tenant.settings.mfa_policy != MfaPolicy::Off
}

fn requires_mfa(tenant: &Tenant) -> bool {
    tenant.is_operator || tenant.settings.mfa_policy == MfaPolicy::Require
}

impl Store {
    /// M11: the one place that decides whether a step-up is due: a second factor (or,
    /// where the practice's policy is `off` and the user has none, the password) proven
    /// within the last 15 minutes of this session. Nothing the session can change about
    /// its own user (removing a factor, an email) lets it pass without one.
    pub fn require_step_up(&self, p: &Principal) -> Result<()> {
        let now = self.inner.clock.now();
        if p.mfa_verified_at
            .is_some_and(|at| now - at <= chrono::Duration::minutes(STEP_UP_MINUTES))
        {
            return Ok(());
        }
        Err(DomainError::StepUpRequired.into())
    }

    fn require_self_service(&self, p: &Principal) -> Result<()> {
        if p.tenant.settings.self_service_mfa {
            Ok(())
        } else {
            Err(DomainError::Forbidden(
                "This practice does not let users change their own MFA; ask the practice administrator."
                    .into(),
            )
            .into())
        }
    }

    async fn own_model(&self, p: &Principal) -> Result<users::Model> {
        self.tenant(p.tenant.id)
            .users()
            .find_model(&self.inner.db, &UserRef::Id(p.user.id.0))
            .await?
            .ok_or_else(|| DomainError::Unauthenticated.into())
    }

    /// The caller's record as it is now, with their second factors (no groups).
    async fn own_record(&self, p: &Principal) -> Result<User> {
        self.tenant(p.tenant.id)
            .users()
            .find(&UserRef::Id(p.user.id.0))
            .await?
            .ok_or_else(|| DomainError::Unauthenticated.into())
    }

    async fn own_user(&self, p: &Principal) -> Result<User> {
        self.tenant(p.tenant.id)
            .users()
            .get(&UserRef::Id(p.user.id.0))
            .await
    }

    /// Checks that `method` can be the user's method under the tenant's rules.
    fn check_method(&self, tenant: &Tenant, method: UserMethod) -> Result<()> {
        if !allows(tenant, method) {
            return Err(DomainError::MethodNotAllowed(format!(
                "This practice does not allow {}.",
                method.as_str()
            ))
            .into());
        }
        if method == UserMethod::None && requires_mfa(tenant) {
            return Err(DomainError::MethodNotAllowed(
                "This practice requires MFA; choose email, sms or totp.".into(),
            )
            .into());
        }
        Ok(())
    }

    /// `PUT /v1/me/mfa`: the user picks a method already proven (self-service + step-up).
    pub async fn me_set_method(
        &self,
        p: &Principal,
        method: &str,
        meta: &RequestMeta,
    ) -> Result<User> {
        self.require_self_service(p)?;
        self.require_step_up(p)?;
        let method = UserMethod::parse(method)?;
        let user = self.own_user(p).await?;
        self.check_method(&p.tenant, method)?;
        let model = self.own_record(p).await?;
        match method {
            UserMethod::Email => {
                own_destination(&model, Channel::Email, true)?;
            }
            UserMethod::Sms => {
                own_destination(&model, Channel::Sms, true)?;
            }
            UserMethod::Totp if !user.totp_enrolled => {
                return Err(DomainError::Conflict(
                    "Enroll an authenticator first (POST /v1/me/mfa/totp).".into(),
                )
                .into());
            }
            _ => {}
        }
        let scope = self.tenant(p.tenant.id);
        let txn = self.inner.begin_write().await?;
        scope.users().set_method(&txn, p.user.id, method).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserUpdated,
                    actor_of(p),
                    Some(user_target(p.user.id, &p.user.username)),
                    meta,
                    json!({"mfa_method": method.as_str(), "by": "self"}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.inner.cache.invalidate_user(p.user.id);
        self.own_user(p).await
    }

    /// `POST /v1/me/mfa/totp`: starts enrolling an authenticator.
    pub async fn me_start_totp(
        &self,
        p: &Principal,
        label: Option<String>,
    ) -> Result<TotpEnrollment> {
        self.require_self_service(p)?;
        self.require_step_up(p)?;
        if !allows(&p.tenant, UserMethod::Totp) {
            return Err(DomainError::MethodNotAllowed(
                "This practice does not allow authenticator apps.".into(),
            )
            .into());
        }
        let label = gatehouse_domain::mfa::flow::check_label(label, &p.user.username)?;
        self.tenant(p.tenant.id)
            .mfa()
            .start_totp(p.user.id, &p.tenant.name, &label)
            .await
    }

    /// Records a second factor proven in this session (`mfa_verified_at`, M11).
    async fn mark_session_verified(&self, p: &Principal) -> Result<()> {
        let turn = self.inner.write_turn().await;
        sessions::Entity::update_many()
            .col_expr(
                sessions::Column::MfaVerifiedAt,
                Expr::value(Some(self.inner.clock.now())),
            )
            .col_expr(sessions::Column::MfaFailures, Expr::value(0))
            .filter(sessions::Column::Id.eq(p.session_id.0))
            .filter(sessions::Column::TenantId.eq(p.tenant.id.0))
            .exec(&self.inner.db)
            .await?;
        drop(turn);
        self.inner.cache.invalidate(&p.token_hash);
        Ok(())
    }

    /// `POST /v1/me/mfa/totp/confirm`: proves the new authenticator; answers the recovery
    /// codes, shown this once. Completing the enrollment counts as a second factor.
    pub async fn me_confirm_totp(
        &self,
        p: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>> {
        self.require_self_service(p)?;
        let scope = self.tenant(p.tenant.id);
        let model = self.own_record(p).await?;
        let now = self.inner.clock.now();
        let compare = async {
            match scope
                .mfa()
                .confirm_totp(p.user.id, code.trim(), unix_now(now))
                .await
            {
                Err(crate::StoreError::Domain(
                    DomainError::NotFound | DomainError::FlowWrongStep,
                )) => Err(DomainError::Conflict(
                    "No authenticator enrollment is under way; start one with POST /v1/me/mfa/totp."
                        .into(),
                )
                .into()),
                other => other,
            }
        };
        let at = GuessContext {
            method: "totp",
            context: "enrollment",
        };
        self.guess(
            scope,
            &model,
            at,
            meta,
            self.judge_on(scope, Counter::Session, p.session_id.0, compare),
        )
        .await?;
        let codes = self.finish_totp_enrollment(scope, &model).await?;
        self.mark_session_verified(p).await?;
        scope
            .audit()
            .record(event(
                Action::MfaEnrolled,
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                json!({"method": "totp", "recovery_codes": codes.len(), "context": "self_service"}),
            ))
            .await?;
        Ok(codes)
    }

    /// `DELETE /v1/me/mfa/totp`: removes the user's authenticator and recovery codes.
    pub async fn me_remove_totp(&self, p: &Principal, meta: &RequestMeta) -> Result<()> {
        self.require_self_service(p)?;
        self.require_step_up(p)?;
        let scope = self.tenant(p.tenant.id);
        if !scope.mfa().remove_totp(p.user.id).await? {
            return Err(DomainError::NotFound.into());
        }
        scope.mfa().remove_recovery_codes(p.user.id).await?;
        if p.user.mfa_method == UserMethod::Totp {
            scope
                .users()
                .set_method(&self.inner.db, p.user.id, UserMethod::None)
                .await?;
        }
        scope
            .audit()
            .record(event(
                Action::MfaReset,
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                json!({"removed": "totp", "by": "self"}),
            ))
            .await?;
        self.inner.cache.invalidate_user(p.user.id);
        Ok(())
    }

    /// `POST /v1/me/recovery-codes`: a new set of recovery codes; the old ones die.
    pub async fn me_regenerate_recovery_codes(
        &self,
        p: &Principal,
        meta: &RequestMeta,
    ) -> Result<Vec<String>> {
        self.require_step_up(p)?;
        let scope = self.tenant(p.tenant.id);
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
                Action::RecoveryCodesRegenerated,
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                json!({"count": codes.len()}),
            ))
            .await?;
        self.inner.cache.invalidate_user(p.user.id);
        Ok(codes)
    }

    /// `POST /v1/me/contacts/{email|phone}`: sends a code to a new (or unproven) address.
    pub async fn me_contact_start(
        &self,
        p: &Principal,
        channel: Channel,
        value: &str,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        self.require_step_up(p)?;
        let field = "value";
        let destination = parse_destination(channel, value, field)?;
        let model = self.own_record(p).await?;
        self.send_code(
            &p.tenant,
            &model,
            CodeOwner::Session(p.session_id),
            Purpose::Contact,
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/me/contacts/{email|phone}/verify`: the code proves the address, which
    /// becomes the user's verified email or phone.
    pub async fn me_contact_verify(
        &self,
        p: &Principal,
        channel: Channel,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<User> {
        let code = OtpCode::parse(code)?;
        let scope = self.tenant(p.tenant.id);
        let model = self.own_record(p).await?;
        let at = GuessContext {
            method: channel.as_str(),
            context: "contact",
        };
        let checked = self
            .guess(scope, &model, at, meta, async {
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
        let masked = self
            .verify_contact(scope, &model, channel, &checked.destination, false)
            .await?;
        scope
            .audit()
            .record(event(
                Action::ContactVerified,
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                json!({"channel": channel.as_str(), "to": masked}),
            ))
            .await?;
        self.own_user(p).await
    }

    /// `POST /v1/me/step-up/code`: a step-up code to one of the user's proven channels.
    pub async fn me_step_up_code(
        &self,
        p: &Principal,
        channel: &str,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let channel = parse_channel(channel, "channel")?;
        let model = self.own_record(p).await?;
        let user = self.own_user(p).await?;
        let destination = own_destination(&model, channel, true)?;
        if !user
            .mfa_facts(&p.tenant)
            .usable_factors()
            .contains(&gatehouse_domain::mfa::flow::factor_of(channel))
        {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} codes are not one of this account's methods.",
                channel.as_str()
            ))
            .into());
        }
        self.send_code(
            &p.tenant,
            &model,
            CodeOwner::Session(p.session_id),
            Purpose::StepUp,
            destination,
            meta,
        )
        .await
    }

    /// `POST /v1/me/step-up`: proves a second factor now; refreshes `mfa_verified_at`.
    pub async fn me_step_up(
        &self,
        p: &Principal,
        method: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<()> {
        if method == "password" {
            return self.step_up_with_password(p, code, meta).await;
        }
        let proof = Proof::parse(method)?;
        let user = self.own_user(p).await?;
        let factors = user.mfa_facts(&p.tenant).usable_factors();
        if !proof.usable(&factors) {
            return Err(DomainError::MethodNotAllowed(format!(
                "{} is not one of this account's methods.",
                proof.as_str()
            ))
            .into());
        }
        let scope = self.tenant(p.tenant.id);
        let model = self.own_record(p).await?;
        let at = GuessContext {
            method: proof.as_str(),
            context: "step_up",
        };
        match proof {
            Proof::Code => {
                let code = OtpCode::parse(code)?;
                self.guess(scope, &model, at, meta, async {
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
                let now = self.inner.clock.now();
                let compare = async {
                    if proof == Proof::Totp {
                        scope
                            .mfa()
                            .verify_totp(p.user.id, code.trim(), unix_now(now))
                            .await
                    } else {
                        scope.mfa().use_recovery_code(p.user.id, code).await
                    }
                };
                self.guess(
                    scope,
                    &model,
                    at,
                    meta,
                    self.judge_on(scope, Counter::Session, p.session_id.0, compare),
                )
                .await?;
            }
        }
        self.mark_session_verified(p).await?;
        let target = Some(user_target(p.user.id, &p.user.username));
        if proof == Proof::RecoveryCode {
            let left = scope.mfa().recovery_codes_remaining(p.user.id).await?;
            scope
                .audit()
                .record(event(
                    Action::RecoveryCodeUsed,
                    actor_of(p),
                    target.clone(),
                    meta,
                    json!({"remaining": left}),
                ))
                .await?;
            self.inner.cache.invalidate_user(p.user.id);
        }
        scope
            .audit()
            .record(event(
                Action::MfaVerified,
                actor_of(p),
                target,
                meta,
                json!({"method": proof.as_str(), "context": "step_up"}),
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
        let user = self.own_user(p).await?;
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
        let model = self.own_model(p).await?;
        let secret = secrecy::SecretString::from(password.to_owned());
        if !self
            .judge_own_password(p, &model, secret, meta, "wrong_step_up_password")
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
        self.mark_session_verified(p).await?;
        self.tenant(p.tenant.id)
            .audit()
            .record(event(
                Action::MfaVerified,
                actor_of(p),
                Some(user_target(p.user.id, &p.user.username)),
                meta,
                json!({"method": "password", "context": "step_up"}),
            ))
            .await
    }

    /// The user's live remembered devices.
    pub async fn devices_of(&self, scope: TenantScope<'_>, user: &UserRef) -> Result<Vec<Device>> {
        let u = scope.users().get(user).await?;
        scope.mfa().devices(u.id).await
    }

    /// Revokes one remembered device of `user` (by the user or an admin).
    pub async fn revoke_device_of(
        &self,
        actor: &Principal,
        scope: TenantScope<'_>,
        user: &UserRef,
        device: Uuid,
        meta: &RequestMeta,
    ) -> Result<()> {
        let u = scope.users().get(user).await?;
        scope.mfa().revoke_device(u.id, device).await?;
        scope
            .audit()
            .record(event(
                Action::DeviceRevoked,
                actor_of(actor),
                Some(user_target(u.id, &u.username)),
                meta,
                json!({"device_id": device.to_string()}),
            ))
            .await
    }

    /// `PUT .../users/{user_id}/mfa`: an admin sets a user's method and enrollment mode.
    pub async fn admin_set_mfa(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        method: &str,
        enrollment: &str,
        meta: &RequestMeta,
    ) -> Result<User> {
        let parsed = (UserMethod::parse(method), Enrollment::parse(enrollment));
        let (method, enrollment) = match parsed {
            (Ok(m), Ok(e)) => (m, e),
            (m, e) => {
                let errs = [m.err(), e.err()]
                    .into_iter()
                    .flatten()
                    .flat_map(|e| match e {
                        DomainError::Validation(v) => v,
                        _ => Vec::new(),
                    })
                    .collect();
                return Err(DomainError::Validation(errs).into());
            }
        };
        self.require_step_up(actor)?;
        let scope = self.tenant(tenant.id);
        let u = scope.users().get(user).await?;
        self.check_method(tenant, method)?;
        let txn = self.inner.begin_write().await?;
        scope
            .users()
            .set_mfa(&txn, u.id, method, Some(enrollment))
            .await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::UserUpdated,
                    actor_of(actor),
                    Some(user_target(u.id, &u.username)),
                    meta,
                    json!({"mfa_method": method.as_str(), "mfa_enrollment": enrollment.as_str()}),
                ),
            )
            .await?;
        txn.commit().await?;
        self.inner.cache.invalidate_user(u.id);
        scope.users().get(&UserRef::Id(u.id.0)).await
    }

    /// `DELETE .../users/{user_id}/mfa` (M9): removes the authenticator, recovery codes
    /// and remembered devices, takes the proof off the method's address, and forces
    /// enrollment at the next sign-in.
    pub async fn admin_reset_mfa(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.require_step_up(actor)?;
        self.reset_mfa_as(actor_of(actor), tenant, user, meta).await
    }

    /// The reset itself, by `actor` (an admin, or support through an escalation).
    pub async fn reset_mfa_as(
        &self,
        actor: gatehouse_domain::audit::Actor,
        tenant: &Tenant,
        user: &UserRef,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.tenant(tenant.id);
        let u = scope.users().get(user).await?;
        let mfa = scope.mfa();
        let had_totp = mfa.remove_totp(u.id).await?;
        let codes = mfa.remove_recovery_codes(u.id).await?;
        let txn = self.inner.begin_write().await?;
        let devices = mfa.revoke_all_devices(&txn, u.id).await?;
        scope.users().reset_mfa(&txn, u.id, u.mfa_method).await?;
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    Action::MfaReset,
                    actor,
                    Some(user_target(u.id, &u.username)),
                    meta,
                    json!({
                        "method": u.mfa_method.as_str(),
                        "authenticator_removed": had_totp,
                        "recovery_codes_removed": codes,
                        "devices_revoked": devices,
                    }),
                ),
            )
            .await?;
        txn.commit().await?;
        self.inner.cache.invalidate_user(u.id);
        Ok(())
    }

    /// `POST .../trusted-networks`: adds a range (or the caller's own address).
    pub async fn add_trusted_network(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        new: NewNetwork,
        meta: &RequestMeta,
    ) -> Result<TrustedNetwork> {
        // A trusted network skips the second factor: it weakens a defence (M11).
        self.require_step_up(actor)?;
        let cidr = match (new.cidr.as_deref().map(str::trim), new.my_ip) {
            (Some(c), false) if !c.is_empty() => Cidr::parse(c)?,
            (None, true) => {
                let ip: IpAddr = meta.ip.ok_or_else(|| {
                    DomainError::field("my_ip", "the client address is not known")
                })?;
                Cidr::host(ip)
            }
            _ => {
                return Err(DomainError::field("cidr", "give either cidr or my_ip: true").into());
            }
        };
        if let Some(d) = &new.description
            && (d.chars().count() > 200 || d.chars().any(char::is_control))
        {
            return Err(DomainError::field(
                "description",
                "description must be at most 200 characters, without control characters",
            )
            .into());
        }
        let scope = self.tenant(tenant.id);
        let n = scope
            .mfa()
            .add_network(
                cidr,
                new.description,
                new.user_id.map(UserId),
                Some(actor.user.id),
            )
            .await?;
        scope
            .audit()
            .record(event(
                Action::NetworkAdded,
                actor_of(actor),
                None,
                meta,
                json!({"id": n.id.to_string(), "cidr": n.cidr.to_string(),
                       "user_id": n.user_id.map(|u| u.to_string())}),
            ))
            .await?;
        Ok(n)
    }

    /// `DELETE .../trusted-networks/{id}`.
    pub async fn remove_trusted_network(
        &self,
        actor: &Principal,
        tenant: &Tenant,
        id: Uuid,
        meta: &RequestMeta,
    ) -> Result<()> {
        let scope = self.tenant(tenant.id);
        let n = scope.mfa().remove_network(id).await?;
        scope
            .audit()
            .record(event(
                Action::NetworkRemoved,
                actor_of(actor),
                None,
                meta,
                json!({"id": n.id.to_string(), "cidr": n.cidr.to_string(),
                       "user_id": n.user_id.map(|u| u.to_string())}),
            ))
            .await
    }
}

/// Shared with the sign-in flow (gatehouse-app's `signin`), which sends, proves and
/// records the same codes and contacts; they move to gatehouse-app with the rest of MFA.
impl Store {
    /// Issues a code to `destination` and queues its delivery. A refusal before any
    /// provider (the throttle) is audited as `mfa.code_refused` and answered as an error.
    pub async fn send_code(
        &self,
        tenant: &Tenant,
        user: &User,
        owner: CodeOwner,
        purpose: Purpose,
        destination: Destination,
        meta: &RequestMeta,
    ) -> Result<CodeSent> {
        let scope = self.tenant(tenant.id);
        let issued = scope
            .mfa()
            .issue_code(CodeRequest {
                user: user.id,
                owner,
                purpose,
                destination: destination.clone(),
                ttl_seconds: tenant.settings.code_ttl_seconds,
            })
            .await;
        let issued = match issued {
            Ok(i) => i,
            Err(crate::StoreError::Domain(d)) => {
                let reason = match &d {
                    DomainError::RateLimited { .. } => "rate_limited",
                    other => channel_refusal(other).unwrap_or("refused"),
                };
                scope
                    .audit()
                    .record(event(
                        Action::MfaCodeRefused,
                        actor_user(user),
                        Some(user_target(user.id, &user.username)),
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

    /// After a proven authenticator: it becomes the user's method and the recovery codes
    /// are (re)issued.
    pub async fn finish_totp_enrollment(
        &self,
        scope: TenantScope<'_>,
        user: &User,
    ) -> Result<Vec<String>> {
        let uid = user.id;
        scope
            .users()
            .set_method(&self.inner.db, uid, UserMethod::Totp)
            .await?;
        let codes = scope.mfa().replace_recovery_codes(uid).await?;
        self.inner.cache.invalidate_user(uid);
        Ok(codes)
    }

    /// Records a proven address as the user's verified contact; with `as_method`, also
    /// as their MFA method. Answers the masked address.
    pub async fn verify_contact(
        &self,
        scope: TenantScope<'_>,
        user: &User,
        channel: Channel,
        destination: &str,
        as_method: bool,
    ) -> Result<String> {
        let uid = user.id;
        let dest = parse_destination(channel, destination, "destination")?;
        scope
            .users()
            .set_verified_contact(&self.inner.db, uid, &dest, as_method)
            .await?;
        self.inner.cache.invalidate_user(uid);
        Ok(dest.masked())
    }
}
