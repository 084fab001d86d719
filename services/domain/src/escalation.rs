//! Escalations (S2): what the vendor's support may ask to do to a practice's user, who
//! may decide it, and how long a request and an approval hold. The store keeps the rows
//! and claims them atomically; every decision about whether a step is allowed is here.

use crate::Error;
use crate::validation::{Collector, FieldError};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

/// How long a request waits for a decision before it lapses.
pub const PENDING_HOURS: i64 = 72;
/// How long an approval stays good for execution (S2).
pub const EXECUTION_WINDOW_MINUTES: i64 = 60;

/// What support asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationAction {
    Unlock,
    ResetMfa,
    ResetPassword,
}

impl EscalationAction {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationAction::Unlock => "unlock",
            EscalationAction::ResetMfa => "reset_mfa",
            EscalationAction::ResetPassword => "reset_password",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unlock" => Some(EscalationAction::Unlock),
            "reset_mfa" => Some(EscalationAction::ResetMfa),
            "reset_password" => Some(EscalationAction::ResetPassword),
            _ => None,
        }
    }
}

/// Where an escalation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EscalationStatus {
    Pending,
    Approved,
    Denied,
    Executed,
    Expired,
}

impl EscalationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EscalationStatus::Pending => "pending",
            EscalationStatus::Approved => "approved",
            EscalationStatus::Denied => "denied",
            EscalationStatus::Executed => "executed",
            EscalationStatus::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(EscalationStatus::Pending),
            "approved" => Some(EscalationStatus::Approved),
            "denied" => Some(EscalationStatus::Denied),
            "executed" => Some(EscalationStatus::Executed),
            "expired" => Some(EscalationStatus::Expired),
            _ => None,
        }
    }
}

/// Until when a request opened at `now` waits for a decision.
pub fn pending_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::hours(PENDING_HOURS)
}

/// Until when an approval given at `now` may be executed.
pub fn approved_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now + Duration::minutes(EXECUTION_WINDOW_MINUTES)
}

/// A request's free text (`reason`, `ticket`), trimmed: required, at most `max`
/// characters, no control characters (line breaks and tabs only where `newlines`).
pub fn checked_text(
    c: &mut Collector,
    field: &str,
    value: &str,
    max: usize,
    newlines: bool,
) -> Option<String> {
    let v = value.trim();
    let bad_char = v
        .chars()
        .any(|ch| ch.is_control() && !(newlines && (ch == '\n' || ch == '\r' || ch == '\t')));
    if v.is_empty() || v.chars().count() > max || bad_char {
        c.push(FieldError::new(
            field,
            format!("required, at most {max} characters, without control characters"),
        ));
        None
    } else {
        Some(v.to_owned())
    }
}

/// Only a pending escalation is decided.
pub fn ensure_pending(status: EscalationStatus) -> Result<(), Error> {
    if status == EscalationStatus::Pending {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "the escalation is already {}",
            status.as_str()
        )))
    }
}

/// A practice admin decides a pending escalation, never one about themselves.
pub fn practice_may_decide(
    status: EscalationStatus,
    subject: Uuid,
    admin: Uuid,
) -> Result<(), Error> {
    if subject == admin {
        return Err(Error::Forbidden(
            "Another administrator must decide an escalation about you.".into(),
        ));
    }
    ensure_pending(status)
}

/// A support admin approves (two-person rule) only an escalation someone else asked for,
/// only while it is pending, and only when the practice has no other active, unlocked
/// admin who could decide it (`other_admins`, asked for only when the rest holds).
pub async fn support_may_approve<F, E>(
    status: EscalationStatus,
    requested_by: Uuid,
    approver: Uuid,
    other_admins: F,
) -> Result<(), E>
where
    F: std::future::Future<Output = Result<u64, E>>,
    E: From<Error>,
{
    if requested_by == approver {
        return Err(Error::Forbidden(
            "Two-person rule: someone other than the requester must approve.".into(),
        )
        .into());
    }
    ensure_pending(status)?;
    if other_admins.await? > 0 {
        return Err(Error::Conflict(
            "The practice has an administrator who can decide; they must approve it.".into(),
        )
        .into());
    }
    Ok(())
}

/// An escalation is executed only when approved, and `reset_password` (only it) comes
/// with the user's temporary password.
pub fn ready_to_execute(
    status: EscalationStatus,
    action: EscalationAction,
    temporary_password_given: bool,
) -> Result<(), Error> {
    if status != EscalationStatus::Approved {
        return Err(Error::EscalationNotApproved(format!(
            "This escalation is {}; only an approved escalation can be executed, once, within {EXECUTION_WINDOW_MINUTES} minutes of its approval.",
            status.as_str()
        )));
    }
    match (action, temporary_password_given) {
        (EscalationAction::ResetPassword, false) => Err(Error::field(
            "temporary_password",
            "required to reset a password",
        )),
        (EscalationAction::Unlock | EscalationAction::ResetMfa, true) => Err(Error::field(
            "temporary_password",
            "only for reset_password",
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const ALL_ACTIONS: [EscalationAction; 3] = [
        EscalationAction::Unlock,
        EscalationAction::ResetMfa,
        EscalationAction::ResetPassword,
    ];
    const ALL_STATUSES: [EscalationStatus; 5] = [
        EscalationStatus::Pending,
        EscalationStatus::Approved,
        EscalationStatus::Denied,
        EscalationStatus::Executed,
        EscalationStatus::Expired,
    ];

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        // The futures here never wait, so one poll answers.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a future that never waits waited"),
        }
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Validation(errs) => errs.iter().map(|f| f.field.clone()).collect(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn s2_the_words_of_actions_and_statuses_read_back() {
        for a in ALL_ACTIONS {
            assert_eq!(EscalationAction::parse(a.as_str()), Some(a));
        }
        for s in ALL_STATUSES {
            assert_eq!(EscalationStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(EscalationAction::parse("delete_user"), None);
        assert_eq!(EscalationStatus::parse("Pending"), None);
    }

    #[test]
    fn s2_a_request_waits_72_hours_and_an_approval_holds_an_hour() {
        let now = Utc.with_ymd_and_hms(2026, 12, 6, 9, 0, 0).unwrap();
        assert_eq!(
            pending_until(now),
            Utc.with_ymd_and_hms(2026, 12, 9, 9, 0, 0).unwrap()
        );
        assert_eq!(
            approved_until(now),
            Utc.with_ymd_and_hms(2026, 12, 6, 10, 0, 0).unwrap()
        );
    }

    #[test]
    fn s2_free_text_is_trimmed_bounded_and_free_of_control_characters() {
        let mut c = Collector::new();
        assert_eq!(
            checked_text(&mut c, "reason", "  locked out\nafter a trip ", 1000, true),
            Some("locked out\nafter a trip".into())
        );
        assert_eq!(checked_text(&mut c, "ticket", "T-1\n2", 100, false), None);
        assert_eq!(checked_text(&mut c, "ticket", "   ", 100, false), None);
        assert_eq!(
            checked_text(&mut c, "ticket", &"x".repeat(101), 100, false),
            None
        );
        assert_eq!(
            checked_text(&mut c, "ticket", &"é".repeat(100), 100, false),
            Some("é".repeat(100))
        );
        assert_eq!(
            checked_text(&mut c, "reason", "bell\u{7}", 1000, true),
            None
        );
        let fields = match c.finish() {
            Err(Error::Validation(errs)) => errs.into_iter().map(|f| f.field).collect::<Vec<_>>(),
            other => panic!("expected field errors, got {other:?}"),
        };
        assert_eq!(fields, ["ticket", "ticket", "ticket", "reason"]);
    }

    #[test]
    fn s2_a_practice_admin_decides_only_pending_escalations_about_someone_else() {
        let (subject, admin) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(
            practice_may_decide(EscalationStatus::Pending, subject, admin),
            Ok(())
        );
        assert!(matches!(
            practice_may_decide(EscalationStatus::Pending, admin, admin),
            Err(Error::Forbidden(_))
        ));
        for s in ALL_STATUSES
            .into_iter()
            .filter(|s| *s != EscalationStatus::Pending)
        {
            assert_eq!(
                practice_may_decide(s, subject, admin),
                Err(Error::Conflict(format!(
                    "the escalation is already {}",
                    s.as_str()
                )))
            );
        }
    }

    #[test]
    fn s2_support_approves_only_for_a_practice_without_another_admin_and_never_its_own_request() {
        let (agent, approver) = (Uuid::new_v4(), Uuid::new_v4());
        let none = || async { Ok::<u64, Error>(0) };
        assert_eq!(
            block_on(support_may_approve(
                EscalationStatus::Pending,
                agent,
                approver,
                none()
            )),
            Ok(())
        );
        assert!(matches!(
            block_on(support_may_approve(
                EscalationStatus::Pending,
                agent,
                agent,
                none()
            )),
            Err(Error::Forbidden(m)) if m.starts_with("Two-person rule")
        ));
        assert!(matches!(
            block_on(support_may_approve(
                EscalationStatus::Denied,
                agent,
                approver,
                none()
            )),
            Err(Error::Conflict(m)) if m == "the escalation is already denied"
        ));
        assert!(matches!(
            block_on(support_may_approve(
                EscalationStatus::Pending,
                agent,
                approver,
                async { Ok::<u64, Error>(1) }
            )),
            Err(Error::Conflict(m)) if m.contains("administrator who can decide")
        ));
        // The count is not asked for when the request is refused anyway.
        let asked = std::cell::Cell::new(false);
        let counting = async {
            asked.set(true);
            Ok::<u64, Error>(0)
        };
        assert!(
            block_on(support_may_approve(
                EscalationStatus::Pending,
                agent,
                agent,
                counting
            ))
            .is_err()
        );
        assert!(!asked.get());
    }

    #[test]
    fn s2_only_an_approved_escalation_executes_and_only_reset_password_takes_a_password() {
        for s in ALL_STATUSES
            .into_iter()
            .filter(|s| *s != EscalationStatus::Approved)
        {
            for a in ALL_ACTIONS {
                assert!(matches!(
                    ready_to_execute(s, a, a == EscalationAction::ResetPassword),
                    Err(Error::EscalationNotApproved(m)) if m.starts_with(&format!("This escalation is {};", s.as_str()))
                ));
            }
        }
        let approved = EscalationStatus::Approved;
        assert_eq!(
            ready_to_execute(approved, EscalationAction::ResetPassword, true),
            Ok(())
        );
        assert_eq!(
            ready_to_execute(approved, EscalationAction::Unlock, false),
            Ok(())
        );
        assert_eq!(
            ready_to_execute(approved, EscalationAction::ResetMfa, false),
            Ok(())
        );
        assert_eq!(
            field_of(
                ready_to_execute(approved, EscalationAction::ResetPassword, false).unwrap_err()
            ),
            "temporary_password"
        );
        for a in [EscalationAction::Unlock, EscalationAction::ResetMfa] {
            assert_eq!(
                field_of(ready_to_execute(approved, a, true).unwrap_err()),
                "temporary_password"
            );
        }
    }
}
