//! Code challenges (M4): issuing a code writes its challenge and its delivery row in one
//! transaction, after the send throttle; a submitted code takes its try by a conditional
//! UPDATE *before* it is compared (M13), so concurrent submissions are judged one by one:
//! never more than five are compared per code, and two can never both succeed.

use super::Mfa;
use crate::Result;
use crate::entities::{deliveries, mfa_challenges as ch, tenants};
use crate::error::StoreError;
use crate::sql::stmt;
use chrono::{DateTime, Duration, Utc};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::delivery::DESTINATION_MAX_PER_HOUR;
use gatehouse_domain::delivery::DeliveryStatus;
use gatehouse_domain::ids::{EmailAddress, FlowId, PhoneE164, SessionId, UserId};
use gatehouse_domain::jobs::{CodeMessage, SendCode};
use gatehouse_domain::mfa::codes::{
    ChallengeState, Channel, CodeCheck, MAX_ATTEMPTS, OtpCode, Purpose, USER_WINDOW_MINUTES, judge,
    may_send,
};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

/// What a code belongs to: a sign-in flow, or a session (step-up, contact verification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOwner {
    Flow(FlowId),
    Session(SessionId),
}

impl CodeOwner {
    fn condition(self) -> Condition {
        match self {
            CodeOwner::Flow(f) => Condition::all().add(ch::Column::FlowId.eq(f.0)),
            CodeOwner::Session(s) => Condition::all().add(ch::Column::SessionId.eq(s.0)),
        }
    }
}

/// A destination a code can go to.
#[derive(Debug, Clone)]
pub enum Destination {
    Email(EmailAddress),
    Sms(PhoneE164),
}

impl Destination {
    fn channel(&self) -> Channel {
        match self {
            Destination::Email(_) => Channel::Email,
            Destination::Sms(_) => Channel::Sms,
        }
    }

    fn full(&self) -> &str {
        match self {
            Destination::Email(e) => e.as_str(),
            Destination::Sms(p) => p.as_str(),
        }
    }

    /// Masked for display (api.md).
    pub fn masked(&self) -> String {
        match self {
            Destination::Email(e) => e.masked(),
            Destination::Sms(p) => p.masked(),
        }
    }
}

/// A request for a new code.
#[derive(Debug, Clone)]
pub struct CodeRequest {
    pub user: UserId,
    pub owner: CodeOwner,
    pub purpose: Purpose,
    pub destination: Destination,
    pub ttl_seconds: u32,
}

/// A code just issued: the caller pushes `job` to the delivery queue and forgets the code.
#[derive(Debug)]
pub struct IssuedCode {
    pub challenge_id: Uuid,
    pub delivery_id: Uuid,
    pub code: OtpCode,
    /// The send job; its message is sealed (also kept sealed on the delivery row).
    pub job: SendCode,
    pub channel: Channel,
    pub to_masked: String,
    pub expires_at: DateTime<Utc>,
}

/// Midnight of `now`'s day in `tz`, as UTC.
fn local_day_start(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let local = now.with_timezone(&tz).date_naive();
    local
        .and_hms_opt(0, 0, 0)
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or(now - Duration::hours(24))
}

/// A judged code and where it had been sent.
#[derive(Debug, Clone)]
pub struct CheckedCode {
    pub check: CodeCheck,
    /// Whether the submitted code took a try and was compared (`false`: the challenge was
    /// already closed, and the code was not looked at).
    pub compared: bool,
    pub channel: Channel,
    /// The full destination the code went to (an email address or E.164 number).
    pub destination: String,
}

impl Mfa<'_> {
    /// A send refused before any provider (D3, D4, D7): the country is not allowed, the
    /// number opted out, the address is suppressed. An opt-out or suppression is recorded
    /// as a delivery with that status (support sees it; it does not count toward the
    /// throttle) and committed with nothing else.
    async fn refusal(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        req: &CodeRequest,
        now: DateTime<Utc>,
    ) -> Result<Option<(StoreError, bool)>> {
        let status = match &req.destination {
            Destination::Sms(phone) => {
                let settings = self.tenant_settings(txn).await?;
                let code = phone.calling_code().unwrap_or_default();
                if !settings.sms_country_codes.contains(&code) {
                    return Ok(Some((
                        DomainError::SmsCountryBlocked(format!(
                            "This practice sends text messages only to numbers with country code {}; +{code} is not one of them.",
                            settings
                                .sms_country_codes
                                .iter()
                                .map(|c| format!("+{c}"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ))
                        .into(),
                        false,
                    )));
                }
                if !crate::optouts::phone_opted_out_in(txn, phone).await? {
                    return Ok(None);
                }
                DeliveryStatus::OptedOut
            }
            Destination::Email(email) => {
                if !crate::optouts::email_suppressed_in(txn, email).await? {
                    return Ok(None);
                }
                DeliveryStatus::Suppressed
            }
        };
        let channel = req.destination.channel();
        let (error, answer): (&str, StoreError) = match status {
            DeliveryStatus::OptedOut => (
                "refused: the number opted out (STOP)",
                DomainError::PhoneOptedOut {
                    opt_in_number: self.scope.inner.config.sms_numbers.opt_in_number().cloned(),
                }
                .into(),
            ),
            _ => (
                "refused: the address is suppressed after a bounce or complaint",
                DomainError::EmailSuppressed.into(),
            ),
        };
        deliveries::Entity::insert(deliveries::ActiveModel {
            id: Set(Uuid::new_v4()),
            tenant_id: Set(self.scope.uuid()),
            user_id: Set(Some(req.user.0)),
            challenge_id: Set(None),
            channel: Set(channel.as_str().to_owned()),
            destination_masked: Set(req.destination.masked()),
            destination_hash: Set(self.destination_hash(req.destination.full())),
            purpose: Set(req.purpose.as_str().to_owned()),
            status: Set(status.as_str().to_owned()),
            attempts: Set(0),
            provider_message_id: Set(None),
            error: Set(Some(error.to_owned())),
            payload_sealed: Set(None),
            claimed_until: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(txn)
        .await?;
        Ok(Some((answer, true)))
    }

    async fn tenant_settings(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<gatehouse_domain::settings::TenantSettings> {
        let t = tenants::Entity::find_by_id(self.scope.uuid())
            .one(conn)
            .await?
            .ok_or(DomainError::NotFound)?;
        Ok(crate::records::Tenant::try_from(t)?.settings)
    }

    /// Cost and abuse limits after the throttle (D7): at most
    /// [`DESTINATION_MAX_PER_HOUR`] codes per destination per hour across practices,
    /// and the practice's daily SMS budget (its own calendar day).
    async fn within_limits(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        req: &CodeRequest,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let refused: Vec<&str> = DeliveryStatus::refused()
            .map(DeliveryStatus::as_str)
            .collect();
        let hour_ago = now - Duration::hours(1);
        let to_destination: Vec<DateTime<Utc>> = deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::CreatedAt)
            .filter(
                deliveries::Column::DestinationHash
                    .eq(self.destination_hash(req.destination.full())),
            )
            .filter(deliveries::Column::CreatedAt.gt(hour_ago))
            .filter(deliveries::Column::Status.is_not_in(refused.clone()))
            .order_by_asc(deliveries::Column::CreatedAt)
            .into_tuple()
            .all(txn)
            .await?;
        if to_destination.len() as u64 >= DESTINATION_MAX_PER_HOUR {
            let frees = to_destination[0] + Duration::hours(1);
            return Err(DomainError::RateLimited {
                retry_after_secs: Ord::max(
                    u64::try_from((frees - now).num_seconds()).unwrap_or(1),
                    1,
                ),
            }
            .into());
        }
        if let Destination::Sms(_) = req.destination {
            let tenant = tenants::Entity::find_by_id(self.scope.uuid())
                .one(txn)
                .await?
                .ok_or(DomainError::NotFound)?;
            let tenant = crate::records::Tenant::try_from(tenant)?;
            let day_start = local_day_start(now, tenant.timezone);
            let spent = deliveries::Entity::find()
                .filter(deliveries::Column::TenantId.eq(self.scope.uuid()))
                .filter(deliveries::Column::Channel.eq(Channel::Sms.as_str()))
                .filter(deliveries::Column::CreatedAt.gte(day_start))
                .filter(deliveries::Column::Status.is_not_in(refused))
                .count(txn)
                .await?;
            if spent >= u64::from(tenant.settings.sms_daily_limit) {
                return Err(DomainError::SmsBudgetExceeded.into());
            }
        }
        Ok(())
    }

    /// The keyed hash by which support finds deliveries to a destination without storing it.
    pub fn destination_hash(&self, destination: &str) -> String {
        crate::deliveries::destination_mac(self.scope.inner.config.keyring.current(), destination)
    }

    /// Issues a code if the throttle allows (else `RateLimited` with the seconds to wait);
    /// any older open code of the same owner and purpose dies.
    pub async fn issue_code(&self, req: CodeRequest) -> Result<IssuedCode> {
        let now = self.scope.inner.clock.now();
        let tenant = self.scope.uuid();
        let txn = self.scope.inner.begin_write().await?;
        // Serialise this user's sends so the throttle below counts exactly (on SQLite this
        // first write also takes the write lock before anything is read).
        let locked = txn
            .execute_raw(stmt(
                txn.get_database_backend(),
                "UPDATE users SET updated_at = updated_at WHERE id = $1 AND tenant_id = $2",
                vec![req.user.0.into(), tenant.into()],
            ))
            .await?
            .rows_affected();
        if locked != 1 {
            return Err(DomainError::NotFound.into());
        }
        if let Some((refusal, recorded)) = self.refusal(&txn, &req, now).await? {
            if recorded {
                txn.commit().await?;
            }
            return Err(refusal);
        }
        let last_in_owner: Option<DateTime<Utc>> = ch::Entity::find()
            .select_only()
            .column(ch::Column::CreatedAt)
            .filter(ch::Column::TenantId.eq(tenant))
            .filter(req.owner.condition())
            .order_by_desc(ch::Column::CreatedAt)
            .into_tuple()
            .one(&txn)
            .await?;
        let refused: Vec<&str> = DeliveryStatus::refused()
            .map(DeliveryStatus::as_str)
            .collect();
        let user_sends: Vec<DateTime<Utc>> = deliveries::Entity::find()
            .select_only()
            .column(deliveries::Column::CreatedAt)
            .filter(deliveries::Column::TenantId.eq(tenant))
            .filter(deliveries::Column::UserId.eq(req.user.0))
            .filter(deliveries::Column::CreatedAt.gt(now - Duration::minutes(USER_WINDOW_MINUTES)))
            .filter(deliveries::Column::Status.is_not_in(refused))
            .into_tuple()
            .all(&txn)
            .await?;
        may_send(now, last_in_owner, &user_sends)
            .map_err(|retry_after_secs| DomainError::RateLimited { retry_after_secs })?;
        self.within_limits(&txn, &req, now).await?;

        ch::Entity::update_many()
            .col_expr(ch::Column::SupersededAt, Expr::value(Some(now)))
            .filter(ch::Column::TenantId.eq(tenant))
            .filter(req.owner.condition())
            .filter(ch::Column::Purpose.eq(req.purpose.as_str()))
            .filter(ch::Column::UsedAt.is_null())
            .filter(ch::Column::SupersededAt.is_null())
            .exec(&txn)
            .await?;

        let code = OtpCode::generate(&mut rand::rngs::OsRng);
        let challenge_id = Uuid::new_v4();
        let delivery_id = Uuid::new_v4();
        let expires_at = now + Duration::seconds(i64::from(req.ttl_seconds));
        let channel = req.destination.channel();
        let key = self.scope.inner.config.keyring.current();
        let (flow_id, session_id) = match req.owner {
            CodeOwner::Flow(f) => (Some(f.0), None),
            CodeOwner::Session(s) => (None, Some(s.0)),
        };
        ch::Entity::insert(ch::ActiveModel {
            id: Set(challenge_id),
            tenant_id: Set(tenant),
            user_id: Set(req.user.0),
            flow_id: Set(flow_id),
            session_id: Set(session_id),
            purpose: Set(req.purpose.as_str().to_owned()),
            channel: Set(channel.as_str().to_owned()),
            destination: Set(req.destination.full().to_owned()),
            code_hash: Set(code.keyed_hash(key, challenge_id)),
            attempts: Set(0),
            expires_at: Set(expires_at),
            used_at: Set(None),
            superseded_at: Set(None),
            created_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        let to_masked = req.destination.masked();
        let sealed = key.seal(
            &SendCode::seal_context(delivery_id),
            &CodeMessage::plaintext(req.destination.full(), code.expose()),
        );
        deliveries::Entity::insert(deliveries::ActiveModel {
            id: Set(delivery_id),
            tenant_id: Set(tenant),
            user_id: Set(Some(req.user.0)),
            challenge_id: Set(Some(challenge_id)),
            channel: Set(channel.as_str().to_owned()),
            destination_masked: Set(to_masked.clone()),
            destination_hash: Set(self.destination_hash(req.destination.full())),
            purpose: Set(req.purpose.as_str().to_owned()),
            status: Set(DeliveryStatus::Queued.as_str().to_owned()),
            attempts: Set(0),
            provider_message_id: Set(None),
            error: Set(None),
            payload_sealed: Set(Some(sealed.clone())),
            claimed_until: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(IssuedCode {
            challenge_id,
            delivery_id,
            code,
            job: SendCode::new(delivery_id, tenant, sealed),
            channel,
            to_masked,
            expires_at,
        })
    }

    /// The owner's newest code for `purpose` while it can still be used (not used,
    /// replaced, expired or out of tries): where it went, masked, and until when.
    pub async fn open_code(
        &self,
        owner: CodeOwner,
        purpose: Purpose,
    ) -> Result<Option<gatehouse_domain::mfa::flow::CodeSent>> {
        let Some(c) = ch::Entity::find()
            .filter(ch::Column::TenantId.eq(self.scope.uuid()))
            .filter(owner.condition())
            .filter(ch::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(ch::Column::CreatedAt)
            .one(&self.scope.inner.db)
            .await?
        else {
            return Ok(None);
        };
        let now = self.scope.inner.clock.now();
        let tries_left = u32::try_from(c.attempts).is_ok_and(|a| a < MAX_ATTEMPTS);
        if c.used_at.is_some() || c.superseded_at.is_some() || c.expires_at <= now || !tries_left {
            return Ok(None);
        }
        let channel = Channel::parse(&c.channel)
            .ok_or_else(|| StoreError::Corrupt(format!("challenge {}: channel", c.id)))?;
        let to = super::parse_destination(channel, &c.destination, "destination")
            .map_err(|_| StoreError::Corrupt(format!("challenge {}: destination", c.id)))?
            .masked();
        Ok(Some(gatehouse_domain::mfa::flow::CodeSent {
            channel,
            to,
            expires_at: c.expires_at,
        }))
    }

    /// Judges a submitted code against the owner's newest challenge for `purpose`;
    /// `None` when no code was ever sent for it.
    pub async fn check_code(
        &self,
        owner: CodeOwner,
        purpose: Purpose,
        code: &OtpCode,
    ) -> Result<Option<CodeCheck>> {
        Ok(self
            .check_code_detail(owner, purpose, code)
            .await?
            .map(|c| c.check))
    }

    /// As [`Mfa::check_code`], also naming where the judged code was sent.
    pub async fn check_code_detail(
        &self,
        owner: CodeOwner,
        purpose: Purpose,
        code: &OtpCode,
    ) -> Result<Option<CheckedCode>> {
        let tenant = self.scope.uuid();
        let db = &self.scope.inner.db;
        let Some(c) = ch::Entity::find()
            .filter(ch::Column::TenantId.eq(tenant))
            .filter(owner.condition())
            .filter(ch::Column::Purpose.eq(purpose.as_str()))
            .order_by_desc(ch::Column::CreatedAt)
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let now = self.scope.inner.clock.now();
        let channel = Channel::parse(&c.channel)
            .ok_or_else(|| StoreError::Corrupt(format!("challenge {}: channel", c.id)))?;
        let destination = c.destination.clone();
        let checked = |check, compared| CheckedCode {
            check,
            compared,
            channel,
            destination: destination.clone(),
        };
        // The try first: only a code that got one is compared.
        let turn = self.scope.inner.write_turn().await;
        let row = db
            .query_one_raw(stmt(
                db.get_database_backend(),
                "UPDATE mfa_challenges SET attempts = attempts + 1 \
                 WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL AND superseded_at IS NULL \
                 AND attempts < $3 AND expires_at > $4 RETURNING attempts",
                vec![
                    tenant.into(),
                    c.id.into(),
                    (MAX_ATTEMPTS as i32).into(),
                    now.into(),
                ],
            ))
            .await?;
        drop(turn);
        if let Some(r) = row {
            let after = u32::try_from(r.try_get::<i32>("", "attempts")?).unwrap_or(MAX_ATTEMPTS);
            // A code issued just before a key rotation still matches under the retired key.
            let matched = self
                .scope
                .inner
                .config
                .keyring
                .keys()
                .any(|k| code.matches(k, c.id, &c.code_hash));
            if !matched {
                return Ok(Some(checked(
                    if after >= MAX_ATTEMPTS {
                        CodeCheck::Exhausted
                    } else {
                        CodeCheck::Reject {
                            attempts_remaining: MAX_ATTEMPTS - after,
                        }
                    },
                    true,
                )));
            }
            // Right: the code is used, and its try is given back (it was no failure).
            let open = Condition::all()
                .add(ch::Column::TenantId.eq(tenant))
                .add(ch::Column::Id.eq(c.id))
                .add(ch::Column::UsedAt.is_null())
                .add(ch::Column::SupersededAt.is_null())
                .add(ch::Column::ExpiresAt.gt(now));
            let turn = self.scope.inner.write_turn().await;
            let used = ch::Entity::update_many()
                .col_expr(ch::Column::UsedAt, Expr::value(Some(now)))
                .col_expr(ch::Column::Attempts, Expr::col(ch::Column::Attempts).sub(1))
                .filter(open)
                .exec(db)
                .await?
                .rows_affected;
            drop(turn);
            if used == 1 {
                // The code arrived: its delivery says so, whatever its worker recorded. A
                // failure here only delays that to the workers' sweep.
                if let Err(e) = self.scope.deliveries().code_used(c.id).await {
                    tracing::warn!(error = %e, "marking the used code's delivery delivered failed; the sweep will");
                }
                return Ok(Some(checked(CodeCheck::Accept, true)));
            }
        }
        // The conditional update found the challenge closed: say why, from its current state.
        let fresh = ch::Entity::find()
            .filter(ch::Column::TenantId.eq(tenant))
            .filter(ch::Column::Id.eq(c.id))
            .one(db)
            .await?
            .ok_or_else(|| StoreError::Internal("challenge vanished".into()))?;
        Ok(Some(checked(
            judge(
                ChallengeState {
                    expires_at: fresh.expires_at,
                    attempts: u32::try_from(fresh.attempts).unwrap_or(MAX_ATTEMPTS),
                    used: fresh.used_at.is_some(),
                    superseded: fresh.superseded_at.is_some(),
                },
                now,
                false,
            ),
            false,
        )))
    }
}
