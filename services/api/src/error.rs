//! The one place that picks status codes and problem `code`s (RFC 9457 problem+json).

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use gatehouse_domain::{Error as DomainError, FieldError};
use gatehouse_store::StoreError;
use serde::Serialize;
use std::fmt;

/// An error answer of the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    title: &'static str,
    detail: String,
    errors: Vec<FieldError>,
    retry_after: Option<u32>,
    allow: Option<&'static str>,
    /// Extra members of the problem, e.g. `attempts_remaining` (boxed: rarely there).
    extra: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

/// The problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<Object>)]
    pub errors: Vec<FieldError>,
    /// Members particular to a code, e.g. `attempts_remaining` of `mfa_code_invalid`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    /// A problem with no field errors.
    pub fn new(
        status: StatusCode,
        code: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            allow: None,
            extra: None,
        }
    }

    /// Replaces the human sentence.
    pub fn set_detail(&mut self, detail: impl Into<String>) {
        self.detail = detail.into();
    }

    /// The problem's `code`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The HTTP status of this answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem document, for embedding (a Flow's `code_error`).
    pub fn problem(&self) -> Problem {
        Problem {
            kind: format!("urn:gatehouse:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
            extra: self.extra.as_deref().cloned().unwrap_or_default(),
        }
    }

    /// 404 `not_found`.
    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            "No such resource.",
        )
    }

    /// 422 `validation_failed` with field errors.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            "The request has invalid fields; see errors.",
        );
        e.errors = errors;
        e
    }

    /// 403 `forbidden`.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden", detail)
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "Unauthenticated",
            "A valid session token is required (Authorization: Bearer <token>).",
        )
    }

    /// 500 without details; the cause is logged.
    pub fn internal(cause: &dyn std::error::Error) -> Self {
        let mut chain = cause.to_string();
        let mut src = cause.source();
        while let Some(s) = src {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            src = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "Something went wrong on our side; it has been logged.",
        )
    }

    /// 405 for a known path, naming the methods it does support.
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_supported",
            "Method not allowed",
            format!("This path supports {allow}."),
        );
        e.allow = Some(allow);
        e
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl From<DomainError> for ApiError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        match e {
            DomainError::Validation(errors) => ApiError::validation(errors),
            DomainError::PasswordPolicy(errors) => {
                let mut a = ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    "password_policy",
                    "Password does not meet the policy",
                    "The new password breaks the practice's password rules; see errors.",
                );
                a.errors = errors;
                a
            }
            // The same body for unknown company, unknown user and wrong password (P4).
            DomainError::InvalidCredentials => ApiError::new(
                S::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid credentials",
                "The company, user ID or password is not correct.",
            ),
            DomainError::AccountInactive => ApiError::new(
                S::FORBIDDEN,
                "account_inactive",
                "Account inactive",
                "This account has been deactivated. Ask your practice administrator.",
            ),
            DomainError::AccountLocked => ApiError::new(
                S::LOCKED,
                "account_locked",
                "Account locked",
                "This account is locked after too many failed sign-ins. Ask your practice administrator to unlock it.",
            ),
            DomainError::OutsideLoginHours(_) => ApiError::new(
                S::FORBIDDEN,
                "outside_login_hours",
                "Outside login hours",
                "Sign-in is not allowed for this account at this time of day.",
            ),
            DomainError::TenantSuspended => ApiError::new(
                S::FORBIDDEN,
                "tenant_suspended",
                "Practice suspended",
                "This practice's access is suspended. Contact the vendor's support.",
            ),
            DomainError::Unauthenticated => ApiError::unauthenticated(),
            DomainError::Forbidden(why) => ApiError::forbidden(why),
            DomainError::NotFound => ApiError::not_found(),
            DomainError::Conflict(why) => ApiError::new(S::CONFLICT, "conflict", "Conflict", why),
            DomainError::EscalationNotApproved(why) => ApiError::new(
                S::CONFLICT,
                "escalation_not_approved",
                "Escalation not approved",
                why,
            ),
            DomainError::FlowExpired => ApiError::new(
                S::GONE,
                "flow_expired",
                "Sign-in flow expired",
                "This sign-in took too long; start again.",
            ),
            DomainError::FlowCompleted => ApiError::new(
                S::GONE,
                "flow_expired",
                "Sign-in flow finished",
                "This sign-in is already complete; start a new one to sign in again.",
            ),
            DomainError::FlowWrongStep => ApiError::new(
                S::CONFLICT,
                "conflict",
                "Wrong step",
                "The sign-in flow is not at a step that accepts this call.",
            ),
            DomainError::RateLimited { retry_after_secs } => {
                let mut a = ApiError::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Too many requests",
                    format!("Too many attempts; retry in {retry_after_secs} s."),
                );
                a.retry_after = Some(u32::try_from(retry_after_secs.max(1)).unwrap_or(u32::MAX));
                a
            }
            DomainError::MfaCodeInvalid { attempts_remaining } => {
                let mut a = ApiError::new(
                    S::BAD_REQUEST,
                    "mfa_code_invalid",
                    "Wrong code",
                    format!(
                        "That code is not right. {attempts_remaining} {} left.",
                        if attempts_remaining == 1 {
                            "try"
                        } else {
                            "tries"
                        }
                    ),
                );
                let mut extra = serde_json::Map::new();
                extra.insert("attempts_remaining".into(), attempts_remaining.into());
                a.extra = Some(Box::new(extra));
                a
            }
            DomainError::MfaCodeExpired => ApiError::new(
                S::GONE,
                "mfa_code_expired",
                "Code expired",
                "This code has expired or was replaced by a newer one; request a new code.",
            ),
            DomainError::MfaCodeExhausted => ApiError::new(
                S::TOO_MANY_REQUESTS,
                "mfa_code_exhausted",
                "Too many wrong codes",
                "Too many wrong codes were entered; request a new code or sign in again.",
            ),
            DomainError::MethodNotAllowed(why) => {
                ApiError::new(S::CONFLICT, "method_not_allowed", "Method not allowed", why)
            }
            DomainError::NoDestination(why) => {
                ApiError::new(S::CONFLICT, "no_destination", "No destination", why)
            }
            DomainError::DestinationUnverified(why) => ApiError::new(
                S::CONFLICT,
                "destination_unverified",
                "Destination not verified",
                why,
            ),
            DomainError::PhoneOptedOut { opt_in_number } => ApiError::new(
                S::CONFLICT,
                "phone_opted_out",
                "Phone number opted out",
                match opt_in_number {
                    Some(n) => format!(
                        "This phone number replied STOP, so no text messages can be sent to it. To receive codes again, text START to {n} from this phone. The practice cannot override this."
                    ),
                    None => "This phone number replied STOP, so no text messages can be sent to it. To receive codes again, text START to the number the codes came from. The practice cannot override this.".to_owned(),
                },
            ),
            DomainError::EmailSuppressed => ApiError::new(
                S::CONFLICT,
                "email_suppressed",
                "Email address suppressed",
                "Messages to this email address bounced or were reported as spam, so no more are sent to it. Use another method, or ask support to lift the block once the mailbox works.",
            ),
            DomainError::SmsBudgetExceeded => ApiError::new(
                S::CONFLICT,
                "sms_budget_exceeded",
                "SMS budget exceeded",
                "The practice's text messages for today are used up. Use an email code or an authenticator app instead.",
            ),
            DomainError::SmsCountryBlocked(why) => {
                ApiError::new(S::CONFLICT, "sms_country_blocked", "Country not allowed", why)
            }
            DomainError::StepUpRequired => ApiError::new(
                S::FORBIDDEN,
                "step_up_required",
                "Second factor required",
                "This action needs a second factor from the last 15 minutes: POST /v1/me/step-up first.",
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Domain(d) => d.into(),
            other => ApiError::internal(&other),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = self.problem();
        let mut res = HttpResponse::build(self.status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, allow));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED && self.code == "unauthenticated" {
            res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
        }
        match serde_json::to_vec(&body) {
            Ok(bytes) => res.body(bytes),
            Err(_) => HttpResponse::InternalServerError().finish(),
        }
    }
}

/// Turns body, query and path extraction failures into problems (never 500 for bad input).
pub mod rejections {
    use super::*;
    use actix_web::HttpRequest;
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};

    /// JSON body errors: 413 for oversized, 415 for a wrong content type, 422 otherwise.
    pub fn json(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
        let e = match &err {
            JsonPayloadError::Overflow { limit }
            | JsonPayloadError::OverflowKnownLength { limit, .. } => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "Payload too large",
                format!("The body is larger than {limit} bytes."),
            ),
            JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Unsupported media type",
                "Send the body as application/json.",
            ),
            JsonPayloadError::Deserialize(de) => {
                let mut a = ApiError::validation(vec![FieldError::new("body", de.to_string())]);
                a.detail = if de.is_syntax() || de.is_eof() {
                    "The body is not valid JSON.".into()
                } else {
                    "The body does not have the expected fields and types; see errors.".into()
                };
                a
            }
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Bad request",
                "The request body could not be read.",
            ),
        };
        actix_web::error::InternalError::from_response(err, e.error_response()).into()
    }

    /// Query string errors: 422.
    pub fn query(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
        let e = ApiError::validation(vec![FieldError::new("query", err.to_string())]);
        actix_web::error::InternalError::from_response(err, e.error_response()).into()
    }

    /// Path errors: the resource does not exist.
    pub fn path(err: PathError, _req: &HttpRequest) -> actix_web::Error {
        actix_web::error::InternalError::from_response(err, ApiError::not_found().error_response())
            .into()
    }
}
