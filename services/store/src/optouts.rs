//! Refusals that bind every practice (D3, D4): a phone number that texted STOP is opted
//! out for all tenants (a carrier opt-out is per sending number), and an email address
//! that bounced permanently or complained is suppressed. Sends to either are refused
//! before any provider call; only the user (START) or support (lifting a suppression)
//! undoes them, never a practice.

use crate::entities::{email_suppressions as es, phone_opt_outs as po};
use crate::{Result, Store};
use chrono::{DateTime, Utc};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where an opt-out state came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptOutSource {
    /// The user texted a keyword.
    Inbound,
    /// The provider's opt-out list (periodic sync).
    Sync,
    /// The provider answered a check when the number was first used.
    Check,
}

impl OptOutSource {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            OptOutSource::Inbound => "inbound",
            OptOutSource::Sync => "sync",
            OptOutSource::Check => "check",
        }
    }
}

/// What is known about a number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneOptOut {
    pub phone: String,
    pub opted_out: bool,
    /// When it last changed.
    pub since: DateTime<Utc>,
    pub source: String,
}

/// A suppressed address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailSuppression {
    pub email: String,
    /// bounce | complaint
    pub reason: String,
    pub detail: Option<String>,
    pub since: DateTime<Utc>,
}

fn email_key(email: &EmailAddress) -> String {
    email.as_str().trim().to_lowercase()
}

/// Writes a number's opt-out state on `conn` (e.g. inside the transaction of an inbound
/// message).
pub(crate) async fn upsert_opt_out<C: ConnectionTrait>(
    conn: &C,
    phone: &PhoneE164,
    opted_out: bool,
    source: OptOutSource,
    now: DateTime<Utc>,
) -> Result<()> {
    po::Entity::insert(po::ActiveModel {
        phone: Set(phone.as_str().to_owned()),
        opted_out: Set(opted_out),
        source: Set(source.as_str().to_owned()),
        changed_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(po::Column::Phone)
            .update_columns([
                po::Column::OptedOut,
                po::Column::Source,
                po::Column::ChangedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Suppresses an address on `conn`; answers whether the suppression is new (an existing
/// one keeps its first reason).
pub(crate) async fn suppress_in<C: ConnectionTrait>(
    conn: &C,
    email: &EmailAddress,
    reason: &str,
    detail: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool> {
    let inserted = es::Entity::insert(es::ActiveModel {
        email: Set(email_key(email)),
        reason: Set(reason.to_owned()),
        detail: Set(detail.map(|d| d.chars().take(500).collect())),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(es::Column::Email)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(inserted > 0)
}

/// Whether sends to the number are refused (read on `conn`, e.g. inside a transaction).
pub(crate) async fn phone_opted_out_in<C: ConnectionTrait>(
    conn: &C,
    phone: &PhoneE164,
) -> Result<bool> {
    Ok(po::Entity::find_by_id(phone.as_str().to_owned())
        .one(conn)
        .await?
        .is_some_and(|m| m.opted_out))
}

/// Whether the address is suppressed (read on `conn`).
pub(crate) async fn email_suppressed_in<C: ConnectionTrait>(
    conn: &C,
    email: &EmailAddress,
) -> Result<bool> {
    Ok(es::Entity::find_by_id(email_key(email))
        .one(conn)
        .await?
        .is_some())
}

impl Store {
    /// The recorded opt-out state of a number, if any.
    pub async fn phone_opt_out(&self, phone: &PhoneE164) -> Result<Option<PhoneOptOut>> {
        Ok(po::Entity::find_by_id(phone.as_str().to_owned())
            .one(&self.inner.db)
            .await?
            .map(|m| PhoneOptOut {
                phone: m.phone,
                opted_out: m.opted_out,
                since: m.changed_at,
                source: m.source,
            }))
    }

    /// Records that a number opted out (STOP) or back in (START); answers whether the
    /// state changed (a repeated keyword changes nothing, `since` stays).
    pub async fn set_phone_opted_out(
        &self,
        phone: &PhoneE164,
        opted_out: bool,
        source: OptOutSource,
    ) -> Result<bool> {
        if self
            .phone_opt_out(phone)
            .await?
            .is_some_and(|p| p.opted_out == opted_out)
        {
            return Ok(false);
        }
        upsert_opt_out(
            &self.inner.db,
            phone,
            opted_out,
            source,
            self.inner.clock.now(),
        )
        .await?;
        tracing::info!(to = %phone.masked(), opted_out, source = source.as_str(), "SMS opt-out state changed");
        Ok(true)
    }

    /// The recorded opt-out states of many numbers in one read (the send jobs' gate,
    /// batched): per number, in order, whether sends to it are refused, or `None` where
    /// nothing is recorded yet.
    pub async fn phone_opt_outs_of(&self, phones: &[PhoneE164]) -> Result<Vec<Option<bool>>> {
        if phones.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = phones.iter().map(|p| p.as_str().to_owned()).collect();
        let rows: Vec<(String, bool)> = po::Entity::find()
            .select_only()
            .column(po::Column::Phone)
            .column(po::Column::OptedOut)
            .filter(po::Column::Phone.is_in(keys.iter().cloned().collect::<BTreeSet<_>>()))
            .into_tuple()
            .all(&self.inner.db)
            .await?;
        let known: HashMap<String, bool> = rows.into_iter().collect();
        Ok(keys.iter().map(|k| known.get(k).copied()).collect())
    }

    /// Records the provider's answers for numbers first used (checks), in one statement
    /// and one read (the send jobs' gate, batched). A number with a recorded state keeps
    /// it (a STOP or START that arrived during the check wins); a number checked twice in
    /// one batch keeps its first answer. Answers, per check in order, whether sends to the
    /// number are refused, as now recorded.
    pub async fn record_phone_checks(&self, checks: &[(PhoneE164, bool)]) -> Result<Vec<bool>> {
        let now = self.inner.clock.now();
        let mut first: BTreeMap<&str, bool> = BTreeMap::new();
        for (phone, opted_out) in checks {
            first.entry(phone.as_str()).or_insert(*opted_out);
        }
        if first.is_empty() {
            return Ok(Vec::new());
        }
        let turn = self.inner.write_turn().await;
        let inserted =
            po::Entity::insert_many(first.iter().map(|(phone, opted_out)| po::ActiveModel {
                phone: Set((*phone).to_owned()),
                opted_out: Set(*opted_out),
                source: Set(OptOutSource::Check.as_str().to_owned()),
                changed_at: Set(now),
            }))
            .on_conflict(
                OnConflict::column(po::Column::Phone)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&self.inner.db)
            .await?;
        drop(turn);
        if inserted > 0 {
            tracing::info!(
                recorded = inserted,
                checked = first.len(),
                source = "check",
                "SMS opt-out states recorded"
            );
        }
        let phones: Vec<PhoneE164> = checks.iter().map(|(p, _)| p.clone()).collect();
        let states = self.phone_opt_outs_of(&phones).await?;
        // Nothing deletes a recorded state; were one gone, the provider's answer stands.
        Ok(states
            .into_iter()
            .zip(checks)
            .map(|(state, (_, answer))| state.unwrap_or(*answer))
            .collect())
    }

    /// Records a number the provider lists as opted out (the periodic sync), unless the
    /// number changed state after `listed_at` (a START during the sync wins). Answers
    /// whether the state changed.
    pub async fn record_synced_opt_out(
        &self,
        phone: &PhoneE164,
        listed_at: DateTime<Utc>,
    ) -> Result<bool> {
        match self.phone_opt_out(phone).await? {
            Some(p) if p.opted_out || p.since >= listed_at => Ok(false),
            _ => {
                self.set_phone_opted_out(phone, true, OptOutSource::Sync)
                    .await
            }
        }
    }

    /// Whether sends to the number are refused.
    pub async fn is_phone_opted_out(&self, phone: &PhoneE164) -> Result<bool> {
        phone_opted_out_in(&self.inner.db, phone).await
    }

    /// Whether sends to the address are refused.
    pub async fn is_email_suppressed(&self, email: &EmailAddress) -> Result<bool> {
        email_suppressed_in(&self.inner.db, email).await
    }

    /// The suppression of an address, if any.
    pub async fn email_suppression(
        &self,
        email: &EmailAddress,
    ) -> Result<Option<EmailSuppression>> {
        Ok(es::Entity::find_by_id(email_key(email))
            .one(&self.inner.db)
            .await?
            .map(|m| EmailSuppression {
                email: m.email,
                reason: m.reason,
                detail: m.detail,
                since: m.created_at,
            }))
    }

    /// Suppresses an address after a permanent bounce or a complaint; answers whether it
    /// was new (an existing suppression keeps its first reason).
    pub async fn suppress_email(
        &self,
        email: &EmailAddress,
        reason: &str,
        detail: Option<&str>,
    ) -> Result<bool> {
        suppress_in(
            &self.inner.db,
            email,
            reason,
            detail,
            self.inner.clock.now(),
        )
        .await
    }

    /// Lifts the suppression of `email` in `txn`: what it was (reason, since when), or
    /// `None` when the address is not suppressed (or was lifted meanwhile).
    pub async fn lift_email_suppression_in(
        &self,
        txn: &crate::WriteTxn,
        email: &EmailAddress,
    ) -> Result<Option<(String, chrono::DateTime<chrono::Utc>)>> {
        let Some(existing) = es::Entity::find_by_id(email_key(email)).one(&**txn).await? else {
            return Ok(None);
        };
        let lifted = es::Entity::delete_many()
            .filter(es::Column::Email.eq(existing.email.clone()))
            .exec(&**txn)
            .await?
            .rows_affected;
        Ok((lifted > 0).then_some((existing.reason, existing.created_at)))
    }

    /// Lifts a suppression once the mailbox is fixed (support); answers whether one existed.
    pub async fn lift_email_suppression(&self, email: &EmailAddress) -> Result<bool> {
        let _turn = self.inner.write_turn().await;
        let r = es::Entity::delete_many()
            .filter(es::Column::Email.eq(email_key(email)))
            .exec(&self.inner.db)
            .await?;
        Ok(r.rows_affected > 0)
    }
}
