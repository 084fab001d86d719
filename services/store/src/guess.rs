//! One second-factor guess, counted on the user before it is compared (M13).
//!
//! Every wrong code of any method (sign-in, enrollment confirmation, contact verification,
//! step-up) counts on the user until a second factor succeeds; the 10th in a row locks the
//! user as wrong passwords do. Each guess first takes a try on the user, then its own try
//! on the code, flow or session ([`crate::tries`]), and only then is compared: concurrent
//! guesses are judged one by one, never more than 5 per code or flow and never more than
//! 10 per user. This is the one place where a second-factor guess is settled and audited.

use crate::audit::event;
use crate::audit::refusal_event;
use crate::audit::user_target;
use crate::mfa::CheckedCode;
use crate::records::User;
use crate::scope::TenantScope;
use crate::tries::{Counter, MAX_USER_MFA_FAILURES, Taken};
use crate::{RequestMeta, Result, Store};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::{Action, Actor};
use gatehouse_domain::mfa::codes::{CodeCheck, MAX_ATTEMPTS};
use serde_json::json;
use std::future::Future;
use uuid::Uuid;

/// How a guess came out.
#[derive(Debug)]
pub enum Verdict<T> {
    /// Compared and right.
    Right(T),
    /// Compared and wrong: `MfaCodeInvalid` with the tries left here, or `MfaCodeExhausted`.
    Wrong(DomainError),
    /// Not compared (a closed code, no code sent, no enrollment under way...): the user's
    /// try is given back.
    NotCompared(DomainError),
}

/// Where a guess happens, for the audit log.
#[derive(Debug, Clone, Copy)]
pub struct GuessContext<'a> {
    /// `code`, `totp`, `recovery_code`, or the channel of a code.
    pub method: &'a str,
    /// `sign_in`, `enrollment`, `contact`, `step_up`.
    pub context: &'a str,
}

/// The verdict on a judged one-time code; `no_code` when none was sent.
pub fn code_verdict(checked: Option<CheckedCode>, no_code: DomainError) -> Verdict<CheckedCode> {
    let Some(c) = checked else {
        return Verdict::NotCompared(no_code);
    };
    match (c.check, c.compared) {
        (CodeCheck::Accept, _) => Verdict::Right(c),
        (CodeCheck::Reject { attempts_remaining }, true) => {
            Verdict::Wrong(DomainError::MfaCodeInvalid { attempts_remaining })
        }
        (CodeCheck::Exhausted, true) => Verdict::Wrong(DomainError::MfaCodeExhausted),
        (CodeCheck::Reject { attempts_remaining }, false) => {
            Verdict::NotCompared(DomainError::MfaCodeInvalid { attempts_remaining })
        }
        (CodeCheck::Exhausted, false) => Verdict::NotCompared(DomainError::MfaCodeExhausted),
        (CodeCheck::Expired, _) => Verdict::NotCompared(DomainError::MfaCodeExpired),
    }
}

impl Store {
    /// Settles one second-factor guess of `user`: takes the user's try, runs `judge`
    /// (which takes its own try and compares), then starts the user's count again on a
    /// right guess, or keeps it on a wrong one and locks the user at the 10th in a row.
    /// Refusals are audited here (`mfa.failed`, `mfa.exhausted`, `user.locked`).
    pub async fn guess<T>(
        &self,
        scope: TenantScope<'_>,
        user: &User,
        at: GuessContext<'_>,
        meta: &RequestMeta,
        judge: impl Future<Output = Result<Verdict<T>>>,
    ) -> Result<T> {
        let counter = Counter::UserMfa;
        let n = match scope.tries().take(counter, user.id.0).await? {
            Taken::Yes(n) => n,
            Taken::Locked => return Err(DomainError::AccountLocked.into()),
            Taken::Full => return Err(DomainError::MfaCodeExhausted.into()),
        };
        let verdict = match judge.await {
            Ok(v) => v,
            Err(e) => {
                scope.tries().release(counter, user.id.0).await?;
                return Err(e);
            }
        };
        let err = match verdict {
            Verdict::Right(t) => {
                scope.tries().reset(counter, user.id.0).await?;
                return Ok(t);
            }
            Verdict::NotCompared(err) => {
                scope.tries().release(counter, user.id.0).await?;
                if let Some(e) = refusal_event(user, &err, at.method, meta, at.context) {
                    scope.audit().record(e).await?;
                }
                return Err(err.into());
            }
            Verdict::Wrong(err) => err,
        };
        // The tries left are the fewer of the code's (or flow's) and the user's.
        let user_left = MAX_USER_MFA_FAILURES.saturating_sub(n).max(1);
        let err = match err {
            DomainError::MfaCodeInvalid { attempts_remaining } => DomainError::MfaCodeInvalid {
                attempts_remaining: attempts_remaining.min(user_left),
            },
            other => other,
        };
        let txn = self.inner.begin_write().await?;
        let locked = scope.tries().lock_if_mfa_limit(&txn, user.id.0, n).await?;
        if let Some(e) = refusal_event(user, &err, at.method, meta, at.context) {
            scope.audit().append_in(&txn, e).await?;
        }
        if locked {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Action::UserLocked,
                        Actor::system(),
                        Some(user_target(user.id, &user.username)),
                        meta,
                        json!({"reason": "mfa_failures", "mfa_failures": n}),
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        if locked {
            crate::telemetry::metrics().lockouts.add(1, &[]);
            return Err(DomainError::AccountLocked.into());
        }
        Err(err.into())
    }

    /// Compares an authenticator or recovery code after taking a try on the flow or
    /// session `id` (`counter`): at most 5 are compared there.
    pub async fn judge_on(
        &self,
        scope: TenantScope<'_>,
        counter: Counter,
        id: Uuid,
        compare: impl Future<Output = Result<bool>>,
    ) -> Result<Verdict<()>> {
        let k = match scope.tries().take(counter, id).await? {
            Taken::Yes(k) => k,
            Taken::Locked | Taken::Full => {
                return Ok(Verdict::NotCompared(DomainError::MfaCodeExhausted));
            }
        };
        let right = match compare.await {
            Ok(r) => r,
            Err(e) => {
                scope.tries().release(counter, id).await?;
                return Err(e);
            }
        };
        if right {
            scope.tries().reset(counter, id).await?;
            return Ok(Verdict::Right(()));
        }
        Ok(Verdict::Wrong(if k >= MAX_ATTEMPTS {
            DomainError::MfaCodeExhausted
        } else {
            DomainError::MfaCodeInvalid {
                attempts_remaining: MAX_ATTEMPTS - k,
            }
        }))
    }
}
