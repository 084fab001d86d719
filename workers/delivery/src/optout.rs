//! SMS opt-outs at the provider (D3). The store's `phone_opt_outs` is what the API and the
//! send job consult; the provider's own list is kept in step with it three ways:
//!
//! - a number used for the first time (no row yet) is checked with the provider before
//!   the first publish, and the answer recorded, so each number is asked about once
//!   ([`gate`]);
//! - a periodic sync records every number the provider lists as opted out ([`sync_once`],
//!   first run at start): carriers also opt numbers out without an inbound STOP reaching us;
//! - after an inbound START the number is opted back in at the provider ([`after_inbound`]),
//!   which otherwise keeps refusing to publish to it.
//!
//! The provider side is a small trait ([`SmsOptOutSource`]), implemented by the SNS provider
//! and absent with the outbox (which has no opt-out list of its own).

use crate::provider::ProviderError;
use crate::record::SendBatches;
use gatehouse_domain::ids::PhoneE164;
use gatehouse_store::inbound::InboundOutcome;
use gatehouse_store::{Store, StoreError};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The future of one opt-out call to the provider.
pub type OptOutFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ProviderError>> + Send + 'a>>;

/// One page of the provider's opted-out numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptedOutPage {
    pub numbers: Vec<String>,
    /// Where the next page starts; `None` on the last page.
    pub next_token: Option<String>,
}

/// The provider's SMS opt-out list (SNS: `CheckIfPhoneNumberIsOptedOut`,
/// `ListPhoneNumbersOptedOut`, `OptInPhoneNumber`).
pub trait SmsOptOutSource: Send + Sync + std::fmt::Debug + 'static {
    /// Whether the provider refuses to send to `phone`.
    fn check<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, bool>;
    /// One page of the opted-out numbers, from `next_token` (`None`: the first page).
    fn list_opted_out<'a>(&'a self, next_token: Option<&'a str>) -> OptOutFuture<'a, OptedOutPage>;
    /// Opts `phone` back in (after the user texted START).
    fn opt_in<'a>(&'a self, phone: &'a PhoneE164) -> OptOutFuture<'a, ()>;
}

/// Whether an SMS may go to a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    OptedOut,
}

/// Why the opt-out state of a number is not known.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("opt-out store: {0}")]
    Store(#[from] StoreError),
    /// The provider's check failed: not a refusal, the send is tried again later.
    #[error("{0}")]
    Check(ProviderError),
}

/// Decides whether an SMS may go to `phone`, just before the provider call: the recorded
/// state if there is one, else (with a provider list) the provider's answer, recorded.
/// The store is read and written through the process's send batches.
pub async fn gate(
    batches: &SendBatches,
    source: Option<&dyn SmsOptOutSource>,
    phone: &PhoneE164,
) -> Result<Gate, GateError> {
    let opted_out = match (batches.opt_out_state(phone).await?, source) {
        (Some(known), _) => known,
        (None, None) => false,
        (None, Some(source)) => {
            let answer = source.check(phone).await.map_err(|mut e| {
                // Whatever the provider said, no answer is not a refusal.
                e.permanent = false;
                GateError::Check(e)
            })?;
            batches.record_check(phone, answer).await?
        }
    };
    Ok(if opted_out {
        Gate::OptedOut
    } else {
        Gate::Open
    })
}

/// How the periodic opt-out sync runs.
#[derive(Debug, Clone, Copy)]
pub struct OptOutSyncConfig {
    /// Time between runs (the first runs at start).
    pub every: Duration,
    /// Pages read per run at most (SNS answers up to 100 numbers a page); a bound against
    /// a provider that never stops answering a next token.
    pub max_pages: usize,
}

impl Default for OptOutSyncConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(600),
            max_pages: 1_000,
        }
    }
}

/// The provider's opted-out numbers, read page by page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OptedOutList {
    pub numbers: Vec<String>,
    /// Every page was read (false: stopped at the page bound).
    pub complete: bool,
}

/// Reads the provider's list following next tokens, at most `max_pages` pages.
pub async fn list_all(
    source: &dyn SmsOptOutSource,
    max_pages: usize,
) -> Result<OptedOutList, ProviderError> {
    let mut out = OptedOutList::default();
    let mut token: Option<String> = None;
    for _ in 0..max_pages {
        let page = source.list_opted_out(token.as_deref()).await?;
        out.numbers.extend(page.numbers);
        match page.next_token.filter(|t| !t.is_empty()) {
            Some(next) => token = Some(next),
            None => {
                out.complete = true;
                return Ok(out);
            }
        }
    }
    tracing::warn!(
        max_pages,
        "the provider's opt-out list has more pages than one sync reads; the rest waits for the next run"
    );
    Ok(out)
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Numbers the provider listed.
    pub listed: usize,
    /// Numbers newly recorded as opted out.
    pub recorded: usize,
    /// Listed numbers that are not E.164 (skipped).
    pub invalid: usize,
}

/// Why a sync did not finish.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Provider(ProviderError),
    #[error("opt-out store: {0}")]
    Store(#[from] StoreError),
}

/// One sync: records every number the provider lists as opted out.
pub async fn sync_once(
    store: &Store,
    source: &dyn SmsOptOutSource,
    max_pages: usize,
) -> Result<SyncReport, SyncError> {
    // A number that changes state after this instant (a START) is newer than the list.
    let listed_at = store.clock().now();
    let list = list_all(source, max_pages)
        .await
        .map_err(SyncError::Provider)?;
    let mut report = SyncReport {
        listed: list.numbers.len(),
        ..SyncReport::default()
    };
    for number in &list.numbers {
        let Ok(phone) = PhoneE164::parse(number) else {
            report.invalid += 1;
            continue;
        };
        // Only a number that is E.164 as listed: a provider's number is never guessed at.
        if phone.as_str() != number.trim() {
            report.invalid += 1;
            continue;
        }
        if store.record_synced_opt_out(&phone, listed_at).await? {
            report.recorded += 1;
        }
    }
    Ok(report)
}

/// Runs [`sync_once`] at start and then every `config.every` until `stop` turns true.
/// Errors are logged and the loop goes on.
pub(crate) async fn run_sync(
    store: Store,
    source: Arc<dyn SmsOptOutSource>,
    config: OptOutSyncConfig,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(config.every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        match sync_once(&store, source.as_ref(), config.max_pages).await {
            Ok(r) if r.invalid > 0 => tracing::warn!(
                listed = r.listed,
                recorded = r.recorded,
                invalid = r.invalid,
                "SMS opt-out list synced; some listed numbers are not E.164 and were skipped"
            ),
            Ok(r) => tracing::info!(
                listed = r.listed,
                recorded = r.recorded,
                "SMS opt-out list synced"
            ),
            Err(e) => {
                tracing::error!(error = %e, "SMS opt-out sync failed; trying again next time")
            }
        }
    }
    tracing::debug!("opt-out sync stopped");
}

/// After an inbound START, opts the number back in at the provider. A failure is logged:
/// the number stays opted in here (START is the user's decision), and a send the provider
/// still refuses fails with its reason.
pub async fn after_inbound(outcome: &InboundOutcome, source: Option<&dyn SmsOptOutSource>) {
    let (
        InboundOutcome::OptOut {
            phone,
            opted_out: false,
        },
        Some(source),
    ) = (outcome, source)
    else {
        return;
    };
    let Ok(phone) = PhoneE164::parse(phone) else {
        tracing::warn!("an opted-in number is not E.164; not opted in at the provider");
        return;
    };
    match source.opt_in(&phone).await {
        Ok(()) => tracing::info!(to = %phone.masked(), "number opted back in at the provider"),
        Err(e) => {
            tracing::warn!(to = %phone.masked(), error = %e, "opting the number back in at the provider failed")
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Mutex;

    /// Answers fixed pages keyed by the token asked for, and remembers the tokens.
    #[derive(Debug, Default)]
    struct Paged {
        pages: Vec<(Option<&'static str>, OptedOutPage)>,
        asked: Mutex<Vec<Option<String>>>,
    }

    impl SmsOptOutSource for Paged {
        fn check<'a>(&'a self, _phone: &'a PhoneE164) -> OptOutFuture<'a, bool> {
            Box::pin(async { Ok(false) })
        }
        fn list_opted_out<'a>(
            &'a self,
            next_token: Option<&'a str>,
        ) -> OptOutFuture<'a, OptedOutPage> {
            self.asked
                .lock()
                .unwrap()
                .push(next_token.map(str::to_owned));
            let page = self
                .pages
                .iter()
                .find(|(t, _)| *t == next_token)
                .map(|(_, p)| p.clone());
            Box::pin(
                async move { page.ok_or_else(|| ProviderError::permanent("unknown next token")) },
            )
        }
        fn opt_in<'a>(&'a self, _phone: &'a PhoneE164) -> OptOutFuture<'a, ()> {
            Box::pin(async { Ok(()) })
        }
    }

    fn page(numbers: &[&str], next: Option<&str>) -> OptedOutPage {
        OptedOutPage {
            numbers: numbers.iter().map(|n| (*n).to_owned()).collect(),
            next_token: next.map(str::to_owned),
        }
    }

    #[tokio::test]
    async fn d3_the_sync_follows_next_tokens_until_the_last_page() {
        let source = Paged {
            pages: vec![
                (None, page(&["+12025550101", "+12025550102"], Some("p2"))),
                (Some("p2"), page(&["+12025550103"], None)),
            ],
            ..Paged::default()
        };
        let list = list_all(&source, 10).await.unwrap();
        assert_eq!(
            list,
            OptedOutList {
                numbers: vec![
                    "+12025550101".into(),
                    "+12025550102".into(),
                    "+12025550103".into()
                ],
                complete: true,
            }
        );
        assert_eq!(
            *source.asked.lock().unwrap(),
            vec![None, Some("p2".to_owned())]
        );
    }

    #[tokio::test]
    async fn d3_the_sync_reads_at_most_the_page_bound() {
        // A provider that answers the same next token for ever.
        let source = Paged {
            pages: vec![
                (None, page(&["+12025550101"], Some("again"))),
                (Some("again"), page(&["+12025550102"], Some("again"))),
            ],
            ..Paged::default()
        };
        let list = list_all(&source, 3).await.unwrap();
        assert!(!list.complete);
        assert_eq!(list.numbers.len(), 3);
        assert_eq!(source.asked.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn d3_a_failing_page_fails_the_sync() {
        let source = Paged {
            pages: vec![(None, page(&["+12025550101"], Some("missing")))],
            ..Paged::default()
        };
        assert!(list_all(&source, 10).await.is_err());
    }
}
