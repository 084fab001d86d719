//! Wrong passwords (P4): each is counted on the user, and the one that reaches the
//! practice's threshold locks the user. A password typed by a signed-in user (the current
//! password of a change, or a step-up where no second factor exists) is judged like a
//! sign-in's, so a stolen session is no way around the limits.

use crate::{Error, Principal, RequestMeta, Result};
use gatehouse_domain::Error as DomainError;
use gatehouse_domain::audit::details::{PasswordSet, SigninFailure};
use gatehouse_domain::audit::{Actor, Details};
use gatehouse_domain::ids::{SessionId, TenantId, UserId};
use gatehouse_domain::password::Verified;
use gatehouse_store::audit::{actor_user, event, user_target};
use gatehouse_store::scope::TenantScope;
use gatehouse_store::tries::Taken;
use gatehouse_store::users::PasswordVia;
use gatehouse_store::{Store, User};
use secrecy::SecretString;

/// Records a wrong password whose try was taken; the failure that reaches the tenant's
/// threshold locks the user (P4). Answers the error to give the caller:
/// `InvalidCredentials`, or what went wrong recording it.
pub(crate) async fn count_failure(
    store: &Store,
    scope: TenantScope<'_>,
    (threshold, user): (u32, &User),
    meta: &RequestMeta,
    reason: SigninFailure,
) -> Error {
    let result: Result<()> = async {
        let txn = store.begin_write().await?;
        let (n, locked) = scope
            .tries()
            .password_wrong(&txn, user.id.0, threshold)
            .await?;
        let target = Some(user_target(user.id, &user.username));
        scope
            .audit()
            .append_in(
                &txn,
                event(
                    actor_user(user),
                    target.clone(),
                    meta,
                    Details::signin_failed(reason, Some(n)),
                ),
            )
            .await?;
        if locked {
            scope
                .audit()
                .append_in(
                    &txn,
                    event(
                        Actor::system(),
                        target,
                        meta,
                        Details::locked_by_passwords(n),
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        if locked {
            gatehouse_store::telemetry::metrics().lockouts.add(1, &[]);
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => DomainError::InvalidCredentials.into(),
        Err(e) => e,
    }
}

/// The stored hash of the signed-in user `p`; a user gone since the session began is
/// no longer signed in.
pub(crate) async fn own_hash(scope: TenantScope<'_>, p: &Principal) -> Result<String> {
    match scope.users().password_hash(p.user.id).await {
        Err(Error::Domain(DomainError::NotFound)) => Err(DomainError::Unauthenticated.into()),
        other => other,
    }
}

/// A password typed by the signed-in user `p`: a guess like a sign-in's, limited per
/// client address and counted on the user, whose lock it can reach. `Ok(false)`: wrong,
/// and counted.
pub(crate) async fn judge_own_password(
    store: &Store,
    p: &Principal,
    password: SecretString,
    meta: &RequestMeta,
    reason: SigninFailure,
) -> Result<bool> {
    let scope = store.tenant(p.tenant.id);
    let attempt = match meta.ip {
        Some(ip) => Some(
            store
                .login_limiter()
                .begin(ip)
                .await
                .map_err(|retry_after_secs| DomainError::RateLimited { retry_after_secs })?,
        ),
        None => None,
    };
    let threshold = p.tenant.settings.lockout_threshold;
    match scope.tries().take_password(p.user.id.0, threshold).await? {
        Taken::Yes(_) => {}
        Taken::Locked => return Err(DomainError::AccountLocked.into()),
        Taken::Full => {
            return Err(DomainError::RateLimited {
                retry_after_secs: 1,
            }
            .into());
        }
    }
    let verified = async {
        let hash = own_hash(scope, p).await?;
        store.verify_password(hash, password).await
    }
    .await;
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            scope.tries().password_release(p.user.id.0).await?;
            return Err(e);
        }
    };
    if verified == Verified::No {
        let err = count_failure(store, scope, (threshold, &p.user), meta, reason).await;
        if let Some(a) = attempt {
            a.failed().await;
        }
        return match err {
            Error::Domain(DomainError::InvalidCredentials) => Ok(false),
            other => Err(other),
        };
    }
    scope.tries().password_release(p.user.id.0).await?;
    Ok(true)
}

/// Stores a user's new password hash, ends their sessions but `keep` and their
/// remembered devices, and audits the change, in one transaction. A password set by
/// someone else (`via.temporary()`) must be changed at the next sign-in (P3).
pub(crate) async fn replace_password(
    store: &Store,
    (tenant, user, username): (TenantId, UserId, &str),
    hash: String,
    keep: Option<SessionId>,
    (actor, via): (Actor, PasswordVia),
    meta: &RequestMeta,
) -> Result<()> {
    let scope = store.tenant(tenant);
    let now = store.clock().now();
    let txn = store.begin_write().await?;
    scope
        .users()
        .set_password(&txn, user, (hash, via.temporary()), now)
        .await?;
    let sessions = scope.revoke_user_sessions(&*txn, user, keep).await?;
    // Remembered devices end with the password (M7): whoever knew the old one does not
    // keep skipping the second factor.
    let devices = scope.mfa().revoke_all_devices(&*txn, user).await?;
    scope
        .audit()
        .append_in(
            &txn,
            event(
                actor,
                Some(user_target(user, username)),
                meta,
                PasswordSet {
                    via,
                    sessions_ended: sessions,
                    devices_revoked: devices,
                }
                .into_details(),
            ),
        )
        .await?;
    txn.commit().await?;
    store.forget_user_sessions(user);
    Ok(())
}
