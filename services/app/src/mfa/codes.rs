//! One second-factor guess, counted on the user before it is compared (M13), and the
//! codes and contacts that MFA's steps share with sign-in's.
//!
//! Every wrong code of any method (sign-in, enrollment confirmation, contact verification,
//! step-up) counts on the user until a second factor succeeds; the 10th in a row locks the
//! user as wrong passwords do. Each guess first takes a try on the user, then its own try
//! on the code, flow or session (`gatehouse_store::tries`), and only then is compared:
//! concurrent guesses are judged one by one, never more than 5 per code or flow and never
//! more than 10 per user. This is the one place where a second-factor guess is settled
//! and audited.

use crate::{Error, RequestMeta, Result, Tenant};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::{Context, Method};
use gatehouse_domain::audit::{Actor, Details, NewEvent};
use gatehouse_domain::mfa::UserMethod;
use gatehouse_domain::mfa::codes::{Channel, CodeCheck, MAX_ATTEMPTS, Purpose};
use gatehouse_domain::mfa::flow::{CodeSent, channel_refusal};
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::mfa::{CheckedCode, CodeOwner, CodeRequest, Destination, parse_destination};
use gatehouse_store::scope::TenantScope;
use gatehouse_store::tries::{Counter, MAX_USER_MFA_FAILURES, Taken};
use gatehouse_store::{Store, User};
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
pub struct GuessContext {
    /// What is guessed: a code (by its channel when enrolling or proving a contact), an
    /// authenticator's code or a recovery code.
    pub method: Method,
    pub context: Context,
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

/// The audit event of a refused proof, if it deserves one.
fn refusal_event(
    user: &User,
    err: &DomainError,
    method: Method,
    meta: &RequestMeta,
    context: Context,
) -> Option<NewEvent> {
    let target = Some(user_target(user.id, &user.username));
    match err {
        DomainError::MfaCodeInvalid { attempts_remaining } => Some(event(
            actor_user(user),
            target,
            meta,
            Details::MfaFailed {
                method,
                attempts_remaining: *attempts_remaining,
                context,
            },
        )),
        DomainError::MfaCodeExhausted => Some(event(
            actor_user(user),
            target,
            meta,
            Details::MfaExhausted { method, context },
        )),
        _ => None,
    }
}

/// Settles one second-factor guess of `user`: takes the user's try, runs `judge` (which
/// takes its own try and compares), then starts the user's count again on a right guess,
/// or keeps it on a wrong one and locks the user at the 10th in a row. Refusals are
/// audited here (`mfa.failed`, `mfa.exhausted`, `user.locked`).
pub(crate) async fn guess<T>(
    store: &Store,
    scope: TenantScope<'_>,
    user: &User,
    at: GuessContext,
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
    let txn = store.begin_write().await?;
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
                    Actor::system(),
                    Some(user_target(user.id, &user.username)),
                    meta,
                    Details::locked_by_codes(n),
                ),
            )
            .await?;
    }
    txn.commit().await?;
    if locked {
        gatehouse_store::telemetry::metrics().lockouts.add(1, &[]);
        return Err(DomainError::AccountLocked.into());
    }
    Err(err.into())
}

/// Compares an authenticator or recovery code after taking a try on the flow or session
/// `id` (`counter`): at most 5 are compared there.
pub(crate) async fn judge_on(
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

/// Issues a code to `destination` and queues its delivery. A refusal before any provider
/// (the throttle) is audited as `mfa.code_refused` and answered as an error.
pub(crate) async fn send_code(
    store: &Store,
    tenant: &Tenant,
    user: &User,
    (owner, purpose): (CodeOwner, Purpose),
    destination: Destination,
    meta: &RequestMeta,
) -> Result<CodeSent> {
    let scope = store.tenant(tenant.id);
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
        Err(Error::Domain(d)) => {
            let reason = match &d {
                DomainError::RateLimited { .. } => "rate_limited",
                other => channel_refusal(other).unwrap_or("refused"),
            };
            let channel = match destination {
                Destination::Email(_) => Channel::Email,
                Destination::Sms(_) => Channel::Sms,
            };
            scope
                .audit()
                .record(event(
                    actor_user(user),
                    Some(user_target(user.id, &user.username)),
                    meta,
                    Details::MfaCodeRefused {
                        channel,
                        to: destination.masked(),
                        purpose,
                        reason,
                    },
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
    store.enqueue_send(issued.job).await;
    Ok(sent)
}

/// After a proven authenticator: it becomes the user's method and the recovery codes are
/// (re)issued.
pub(crate) async fn finish_totp_enrollment(
    store: &Store,
    scope: TenantScope<'_>,
    user: &User,
) -> Result<Vec<String>> {
    let txn = store.begin_write().await?;
    scope
        .users()
        .set_method(&txn, user.id, UserMethod::Totp)
        .await?;
    txn.commit().await?;
    let codes = scope.mfa().replace_recovery_codes(user.id).await?;
    store.forget_user_sessions(user.id);
    Ok(codes)
}

/// Records a proven address as the user's verified contact; with `as_method`, also as
/// their MFA method. Answers the masked address.
pub(crate) async fn verify_contact(
    store: &Store,
    scope: TenantScope<'_>,
    user: &User,
    (channel, destination): (Channel, &str),
    as_method: bool,
) -> Result<String> {
    let dest = parse_destination(channel, destination, "destination")?;
    let txn = store.begin_write().await?;
    scope
        .users()
        .set_verified_contact(&txn, user.id, &dest, as_method)
        .await?;
    txn.commit().await?;
    store.forget_user_sessions(user.id);
    Ok(dest.masked())
}
