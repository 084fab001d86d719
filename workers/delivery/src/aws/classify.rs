//! AWS failures sorted into "retry while the code lives" and "give up now" (D4, D5).
//!
//! Transient: throttling (`Throttling`, `TooManyRequests`, `LimitExceeded`, ... or HTTP
//! 429), server errors (5xx, `InternalError`, `ServiceUnavailable`), timeouts and requests
//! that never reached the service. Permanent: anything else the service refused (an
//! invalid parameter or destination, a rejected message, an unverified sender, an
//! opted-out number), since sending the same request again gets the same answer.
//!
//! The reason names the API, the service's error code and message and the HTTP status, so
//! support can read it on the delivery. Services quote the destination in some messages
//! ("failed the check ...: someone@example.com"): it is masked before the reason leaves
//! this module. The code is never in a request's error.

use crate::provider::ProviderError;
use aws_sdk_sesv2::config::http::HttpResponse;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use gatehouse_domain::ids::{EmailAddress, PhoneE164};

/// Longest reason kept (a delivery's error is read by people, not stored whole).
const REASON_CHARS: usize = 400;

/// Error codes (without an `Exception` suffix) that mean "too fast, or not now".
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "Throttled",
    "TooManyRequests",
    "LimitExceeded",
    "RequestLimitExceeded",
    "RequestThrottled",
    "SlowDown",
    "ProvisionedThroughputExceeded",
    "PriorRequestNotComplete",
    "TransactionInProgress",
    "InternalError",
    "InternalFailure",
    "InternalServerError",
    "ServiceUnavailable",
    "ServiceFailure",
    "RequestTimeout",
    // Credentials or the clock: the next attempt signs again with fresh ones.
    "ExpiredToken",
    "RequestExpired",
    "IDPCommunicationError",
];

/// How one call failed, as far as deciding what to do goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure<'a> {
    /// The request could not be built (a bad setting or a bug): no retry helps.
    Construction,
    /// No answer in time.
    Timeout,
    /// The request did not get through (connection refused, DNS, TLS, reset). `user`: the
    /// request itself was unusable (for example a malformed endpoint), so no retry helps.
    Dispatch { user: bool },
    /// An answer came but could not be read.
    Unreadable { status: u16 },
    /// The service refused: its error code (if any) and the HTTP status.
    Service { code: Option<&'a str>, status: u16 },
}

impl Failure<'_> {
    /// Whether trying again later can succeed.
    pub fn is_transient(&self) -> bool {
        match *self {
            Failure::Construction | Failure::Dispatch { user: true } => false,
            Failure::Timeout | Failure::Dispatch { user: false } => true,
            // Only a 4xx other than 429 says the request itself was wrong.
            Failure::Unreadable { status } => status == 429 || !(400..500).contains(&status),
            Failure::Service { code, status } => {
                status == 429 || status >= 500 || code.is_some_and(transient_code)
            }
        }
    }
}

/// Whether a service error code means throttling or a passing server problem.
pub fn transient_code(code: &str) -> bool {
    let base = code.strip_suffix("Exception").unwrap_or(code);
    base.contains("Throttl") || TRANSIENT_CODES.contains(&base)
}

/// The [`ProviderError`] for a failed SDK call to `api` (for example `SES SendEmail`) for
/// a message to `destination`.
pub fn from_sdk_error<E>(
    api: &str,
    err: &SdkError<E, HttpResponse>,
    destination: &str,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let context = || DisplayErrorContext(err).to_string();
    let (failure, detail) = match err {
        SdkError::ConstructionFailure(_) => (
            Failure::Construction,
            format!("the request could not be built: {}", context()),
        ),
        SdkError::TimeoutError(_) => (
            Failure::Timeout,
            format!("no answer in time: {}", context()),
        ),
        SdkError::DispatchFailure(d) => {
            let failure = if d.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Dispatch { user: d.is_user() }
            };
            (
                failure,
                format!("could not reach the service: {}", context()),
            )
        }
        SdkError::ResponseError(r) => {
            let status = r.raw().status().as_u16();
            (
                Failure::Unreadable { status },
                format!("unreadable answer (HTTP {status}): {}", context()),
            )
        }
        SdkError::ServiceError(s) => {
            let e = s.err();
            let status = s.raw().status().as_u16();
            let code = e.code();
            let text = match (code, e.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_owned(),
                (None, Some(m)) => m.to_owned(),
                (None, None) => "unknown error".to_owned(),
            };
            (
                Failure::Service { code, status },
                format!("{text} (HTTP {status})"),
            )
        }
        // The enum may grow; what it does not name is a failure to get an answer.
        _ => (
            Failure::Dispatch { user: false },
            format!("failed: {}", context()),
        ),
    };
    let reason = shorten(&scrub(&format!("{api}: {detail}"), destination));
    if failure.is_transient() {
        ProviderError::transient(reason)
    } else {
        ProviderError::permanent(reason)
    }
}

/// The destination as support may see it: `j•••@example.com`, `•••-•••-0147`.
pub fn masked(destination: &str) -> String {
    let masked = if destination.contains('@') {
        EmailAddress::parse(destination).ok().map(|e| e.masked())
    } else {
        PhoneE164::parse(destination).ok().map(|p| p.masked())
    };
    masked.unwrap_or_else(|| "•••".to_owned())
}

/// `text` with every appearance of `destination` (in any ASCII case, and a phone number
/// also without its `+`) replaced by its masked form.
pub fn scrub(text: &str, destination: &str) -> String {
    let destination = destination.trim();
    if destination.len() < 3 {
        return text.to_owned();
    }
    let mask = masked(destination);
    let mut out = replace_ignoring_case(text, destination, &mask);
    if let Some(digits) = destination.strip_prefix('+') {
        out = replace_ignoring_case(&out, digits, &mask);
    }
    out
}

fn replace_ignoring_case(text: &str, needle: &str, with: &str) -> String {
    // ASCII lowercasing keeps every byte offset, so matches in the copy index the original.
    let hay = text.to_ascii_lowercase();
    let needle_lower = needle.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (i, _) in hay.match_indices(&needle_lower) {
        out.push_str(&text[last..i]);
        out.push_str(with);
        last = i + needle.len();
    }
    out.push_str(&text[last..]);
    out
}

fn shorten(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= REASON_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(REASON_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use aws_sdk_sesv2::error::ErrorMetadata;
    use aws_sdk_sesv2::operation::send_email::SendEmailError;
    use aws_sdk_sns::operation::publish::PublishError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    const EMAIL: &str = "Jane.Doe@Example.com";
    const PHONE: &str = "+12025550147";

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(StatusCode::try_from(status).unwrap(), SdkBody::empty())
    }

    fn ses(code: &str, message: &str, status: u16) -> ProviderError {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let err = SdkError::service_error(SendEmailError::generic(meta), response(status));
        from_sdk_error("SES SendEmail", &err, EMAIL)
    }

    fn sns(code: &str, message: &str, status: u16) -> ProviderError {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let err = SdkError::service_error(PublishError::generic(meta), response(status));
        from_sdk_error("SNS Publish", &err, PHONE)
    }

    #[test]
    fn d4_throttling_codes_are_transient_whatever_their_spelling() {
        for code in [
            "Throttling",
            "ThrottlingException",
            "TooManyRequests",
            "TooManyRequestsException",
            "LimitExceeded",
            "LimitExceededException",
            "KMSThrottlingException",
            "ThrottledException",
            "RequestLimitExceeded",
        ] {
            let e = ses(code, "Maximum sending rate exceeded.", 400);
            assert!(!e.permanent, "{code}: {e:?}");
            assert!(e.reason.contains(code), "{e:?}");
        }
        assert!(!sns("Throttling", "Rate exceeded", 400).permanent);
    }

    #[test]
    fn d4_server_errors_are_transient() {
        assert!(!ses("InternalFailure", "oops", 500).permanent);
        assert!(!sns("InternalError", "oops", 500).permanent);
        assert!(!sns("ServiceUnavailable", "down", 503).permanent);
        // The status decides even for codes it does not know.
        assert!(!ses("SomethingNew", "later", 502).permanent);
        assert!(!ses("SomethingNew", "slow down", 429).permanent);
        let e = ses("InternalFailure", "oops", 500);
        assert_eq!(e.reason, "SES SendEmail: InternalFailure: oops (HTTP 500)");
    }

    #[test]
    fn d4_bad_destinations_and_rejections_are_permanent_and_readable() {
        for (code, message) in [
            ("BadRequestException", "Invalid email address."),
            ("MessageRejected", "Email address is not verified."),
            ("MailFromDomainNotVerifiedException", "not verified"),
            ("NotFoundException", "Configuration set <x> does not exist."),
            ("AccountSuspendedException", "suspended"),
            ("SomethingNew", "refused"),
        ] {
            let e = ses(code, message, 400);
            assert!(e.permanent, "{code}: {e:?}");
            assert_eq!(
                e.reason,
                format!("SES SendEmail: {code}: {message} (HTTP 400)")
            );
        }
        for code in [
            "InvalidParameter",
            "InvalidParameterValue",
            "AuthorizationError",
            "OptedOut",
        ] {
            assert!(sns(code, "refused", 400).permanent, "{code}");
        }
        assert!(sns("EndpointDisabled", "disabled", 400).permanent);
    }

    #[test]
    fn d5_a_reason_never_holds_the_full_destination() {
        let e = ses(
            "MessageRejected",
            "Email address is not verified. The following identities failed the check in region US-EAST-1: jane.doe@example.com",
            400,
        );
        assert!(e.permanent);
        assert!(
            !e.reason.to_lowercase().contains("jane.doe"),
            "{}",
            e.reason
        );
        assert!(
            e.reason.ends_with("US-EAST-1: J•••@example.com (HTTP 400)"),
            "{}",
            e.reason
        );
        let e = sns(
            "InvalidParameter",
            "Invalid parameter: PhoneNumber Reason: +12025550147 (12025550147) is not valid",
            400,
        );
        assert!(!e.reason.contains("2025550147"), "{}", e.reason);
        assert!(e.reason.contains("•••-•••-0147"), "{}", e.reason);
        let long = ses("BadRequestException", &"x".repeat(2_000), 400);
        assert!(long.reason.chars().count() <= REASON_CHARS + 1);
        let lines = ses("BadRequestException", "one\ntwo", 400);
        assert!(!lines.reason.contains('\n'));
    }

    #[test]
    fn d4_timeouts_and_connection_failures_are_transient() {
        let timeout: SdkError<SendEmailError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        let e = from_sdk_error("SES SendEmail", &timeout, EMAIL);
        assert!(!e.permanent);
        assert!(
            e.reason.starts_with("SES SendEmail: no answer in time"),
            "{e:?}"
        );

        let refused: SdkError<PublishError, HttpResponse> = SdkError::dispatch_failure(
            ConnectorError::io("Connection refused (os error 111)".into()),
        );
        let e = from_sdk_error("SNS Publish", &refused, PHONE);
        assert!(!e.permanent);
        assert!(e.reason.contains("could not reach the service"), "{e:?}");
        assert!(e.reason.contains("Connection refused"), "{e:?}");

        let slow: SdkError<PublishError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("read timed out".into()));
        assert!(!from_sdk_error("SNS Publish", &slow, PHONE).permanent);

        let garbled: SdkError<PublishError, HttpResponse> =
            SdkError::response_error("not XML", response(502));
        assert!(!from_sdk_error("SNS Publish", &garbled, PHONE).permanent);
    }

    #[test]
    fn d4_requests_that_cannot_be_made_are_permanent() {
        let built: SdkError<SendEmailError, HttpResponse> =
            SdkError::construction_failure("missing FromEmailAddress");
        let e = from_sdk_error("SES SendEmail", &built, EMAIL);
        assert!(e.permanent);
        assert!(e.reason.contains("could not be built"), "{e:?}");
        let user: SdkError<SendEmailError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::user("invalid URI".into()));
        assert!(from_sdk_error("SES SendEmail", &user, EMAIL).permanent);
    }

    #[test]
    fn failure_kinds_are_sorted_as_documented() {
        assert!(Failure::Timeout.is_transient());
        assert!(Failure::Dispatch { user: false }.is_transient());
        assert!(!Failure::Dispatch { user: true }.is_transient());
        assert!(!Failure::Construction.is_transient());
        assert!(Failure::Unreadable { status: 503 }.is_transient());
        assert!(!Failure::Unreadable { status: 403 }.is_transient());
        assert!(
            Failure::Service {
                code: None,
                status: 503
            }
            .is_transient()
        );
        assert!(
            !Failure::Service {
                code: None,
                status: 400
            }
            .is_transient()
        );
        assert!(transient_code("ThrottlingException"));
        assert!(!transient_code("InvalidParameterValue"));
    }

    #[test]
    fn masking_falls_back_when_the_destination_does_not_parse() {
        assert_eq!(masked("jane@example.com"), "j•••@example.com");
        assert_eq!(masked("+12025550147"), "•••-•••-0147");
        assert_eq!(masked("not a destination"), "•••");
        assert_eq!(scrub("to x: ab", "ab"), "to x: ab", "too short to mask");
    }
}
