//! Errors of the domain rules. The API layer maps each to a status and a problem `code`.

use crate::validation::FieldError;

/// A rule of the domain refused the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("the password does not meet the policy")]
    PasswordPolicy(Vec<FieldError>),
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("the account is inactive")]
    AccountInactive,
    #[error("the account is locked")]
    AccountLocked,
    /// When sign-in is allowed instead, for the page that says so.
    #[error("sign-in is outside the user's login hours")]
    OutsideLoginHours(crate::login_hours::AllowedHours),
    #[error("the practice is suspended")]
    TenantSuspended,
    #[error("not authenticated")]
    Unauthenticated,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// An escalation may execute only once approved and within its window (S2).
    #[error("the escalation is not approved: {0}")]
    EscalationNotApproved(String),
    #[error("the sign-in flow has expired")]
    FlowExpired,
    #[error("the sign-in flow is already complete")]
    FlowCompleted,
    #[error("the flow is not at a step that accepts this call")]
    FlowWrongStep,
    #[error("rate limited; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("wrong code; {attempts_remaining} tries left")]
    MfaCodeInvalid { attempts_remaining: u32 },
    #[error("the code has expired")]
    MfaCodeExpired,
    #[error("too many wrong codes")]
    MfaCodeExhausted,
    #[error("method not allowed: {0}")]
    MethodNotAllowed(String),
    #[error("no destination: {0}")]
    NoDestination(String),
    #[error("destination not verified: {0}")]
    DestinationUnverified(String),
    #[error("a recent second factor is required")]
    StepUpRequired,
    /// The number texted STOP (D3); `opt_in_number` is where to text START.
    #[error("the phone number opted out of text messages")]
    PhoneOptedOut {
        opt_in_number: Option<crate::sender::SenderNumber>,
    },
    #[error("the email address is suppressed after a bounce or complaint")]
    EmailSuppressed,
    #[error("the practice's daily SMS budget is spent")]
    SmsBudgetExceeded,
    #[error("text messages to this country are not allowed: {0}")]
    SmsCountryBlocked(String),
}

impl Error {
    /// A validation error on a single field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError::new(field, message)])
    }
}
