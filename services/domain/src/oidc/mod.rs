//! The OpenID Connect provider's rules (I1, I2), without storage: what a client may
//! register as a redirect URI, the scopes, PKCE, the protocol's error codes, the
//! authentication context (`amr`, `acr`) and the claims of ID tokens and userinfo.
//! The signing keys are in [`keys`].

pub mod keys;

use crate::mfa::step::{Bypass, Factor};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Password only (oidc.md "ID token and claims").
pub const ACR_PWD: &str = "urn:gatehouse:acr:pwd";
/// A second factor was proven in this sign-in.
pub const ACR_MFA: &str = "urn:gatehouse:acr:mfa";

/// An authorization code's life (oidc.md): 60 seconds, one use.
pub const CODE_SECONDS: i64 = 60;
/// An access token's life: 10 minutes.
pub const ACCESS_TOKEN_SECONDS: i64 = 600;
/// An ID token's life: 5 minutes.
pub const ID_TOKEN_SECONDS: i64 = 300;
/// How long an authorization request waits for its sign-in: as long as a sign-in flow
/// may take, and a little to read the page.
pub const REQUEST_SECONDS: i64 = 30 * 60;
/// The longest `state` and `nonce` kept (a client's opaque values; a bound keeps them
/// out of the way of a database row or a URL's limit).
pub const MAX_OPAQUE_LEN: usize = 1024;

/// An error as OAuth 2.0 and OpenID Connect name it (RFC 6749 4.1.2.1 and 5.2, OIDC Core
/// 3.1.2.6, RFC 6750 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    UnsupportedResponseType,
    InvalidScope,
    AccessDenied,
    LoginRequired,
    InvalidToken,
    ServerError,
}

impl ErrorCode {
    /// The protocol's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::ServerError => "server_error",
        }
    }
}

/// A refusal of the protocol, with the `error_description` a developer reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn invalid_client() -> Self {
        Self::new(ErrorCode::InvalidClient, "client authentication failed")
    }
}

/// Whether a client keeps a secret (a server-side EHR) or cannot (a native or browser app).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientKind {
    Confidential,
    Public,
}

impl ClientKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Confidential => "confidential",
            ClientKind::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confidential" => Some(ClientKind::Confidential),
            "public" => Some(ClientKind::Public),
            _ => None,
        }
    }
}

/// Checks a redirect URI (or post-logout redirect URI) a client registers: an absolute
/// `https` URL, or `http` only to `localhost` or a loopback address (RFC 9700 2.1, RFC
/// 8252 7.3); no fragment; no user info. It is kept exactly as written and matched
/// exactly.
pub fn check_redirect_uri(text: &str) -> Result<(), String> {
    if text.len() > 2000 {
        return Err("must be at most 2000 characters".into());
    }
    if text.trim() != text || text.is_empty() {
        return Err("must be an absolute URL without surrounding spaces".into());
    }
    let url = url::Url::parse(text).map_err(|_| "must be an absolute URL".to_owned())?;
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not carry a user name or password".into());
    }
    match (url.scheme(), url.host()) {
        ("https", Some(_)) => Ok(()),
        ("http", Some(host)) if is_loopback(&host) => Ok(()),
        ("http", _) => Err("http is allowed only for localhost and loopback addresses".into()),
        _ => Err("must be an https URL (http only for localhost)".into()),
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    }
}

/// The scopes granted: `openid` always, and those of the request that Gatehouse knows
/// (OIDC Core 3.1.2.1: values not understood are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes {
    pub profile: bool,
    pub email: bool,
    pub phone: bool,
    pub offline_access: bool,
}

impl Scopes {
    /// Every scope Gatehouse knows, as discovery lists them.
    pub const SUPPORTED: [&'static str; 5] =
        ["openid", "profile", "email", "phone", "offline_access"];

    /// The requested `scope`; it must hold `openid`.
    pub fn parse(text: &str) -> Result<Self, OAuthError> {
        let mut s = Scopes::default();
        let mut openid = false;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            match word {
                "openid" => openid = true,
                "profile" => s.profile = true,
                "email" => s.email = true,
                "phone" => s.phone = true,
                "offline_access" => s.offline_access = true,
                _ => {}
            }
        }
        if !openid {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                "scope must include openid",
            ));
        }
        Ok(s)
    }

    /// The granted scopes as the token response states them.
    pub fn to_text(self) -> String {
        let mut words = vec!["openid"];
        for (on, w) in [
            (self.profile, "profile"),
            (self.email, "email"),
            (self.phone, "phone"),
            (self.offline_access, "offline_access"),
        ] {
            if on {
                words.push(w);
            }
        }
        words.join(" ")
    }
}

/// What the client asked of the sign-in with `prompt` (OIDC Core 3.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// No page may be shown: an existing session, or `login_required`.
    None,
    /// Sign in again even with a session.
    Login,
}

impl Prompt {
    /// The `prompt` parameter. `consent` and `select_account` ask for nothing here:
    /// every client is registered by the vendor for its practices (no consent page), and
    /// a browser holds one session. `none` with anything else is refused.
    pub fn parse(text: Option<&str>) -> Result<Option<Self>, OAuthError> {
        let Some(text) = text else { return Ok(None) };
        let words: Vec<&str> = text.split(' ').filter(|w| !w.is_empty()).collect();
        if words.contains(&"none") {
            if words.len() > 1 {
                return Err(OAuthError::invalid_request(
                    "prompt=none cannot be combined with another value",
                ));
            }
            return Ok(Some(Prompt::None));
        }
        let mut prompt = None;
        for w in words {
            match w {
                "login" => prompt = Some(Prompt::Login),
                "consent" | "select_account" => {}
                other => {
                    return Err(OAuthError::invalid_request(format!(
                        "prompt value {other} is not supported"
                    )));
                }
            }
        }
        Ok(prompt)
    }
}

/// Whether `acr_values` asks for a second factor (`urn:gatehouse:acr:mfa` among them).
pub fn wants_mfa(acr_values: Option<&str>) -> bool {
    acr_values.is_some_and(|v| v.split(' ').any(|w| w == ACR_MFA))
}

/// Checks a PKCE challenge (RFC 7636 4.2): S256 only, as RFC 9700 asks of every client.
pub fn check_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<String, OAuthError> {
    let Some(challenge) = challenge else {
        return Err(OAuthError::invalid_request(
            "code_challenge is required (PKCE with S256)",
        ));
    };
    if method != Some("S256") {
        return Err(OAuthError::invalid_request(
            "code_challenge_method must be S256",
        ));
    }
    let decoded = URL_SAFE_NO_PAD.decode(challenge).unwrap_or_default();
    if challenge.len() != 43 || decoded.len() != 32 {
        return Err(OAuthError::invalid_request(
            "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
        ));
    }
    Ok(challenge.to_owned())
}

/// Whether `verifier` is a PKCE verifier (43 to 128 unreserved characters) whose S256
/// transform is `challenge`.
pub fn verifier_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// How a sign-in was made, as ID tokens tell it (RFC 8176 `amr`, and `acr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthContext {
    pub amr: Vec<String>,
}

impl AuthContext {
    /// The methods of a sign-in: the password, then the second factor proven (`otp` for
    /// an authenticator app, `sms`, `mail` for an email code (not registered in RFC 8176),
    /// `rc` for a recovery code (ours too)) with `mfa`; or, where a trusted network or a
    /// remembered device stood in for it, `trusted_network` or `remembered_device`.
    pub fn of(proven: Option<Factor>, bypass: Option<Bypass>) -> Self {
        let mut amr = vec!["pwd".to_owned()];
        match (proven, bypass) {
            (Some(f), _) => {
                amr.push(
                    match f {
                        Factor::Totp => "otp",
                        Factor::Sms => "sms",
                        Factor::Email => "mail",
                        Factor::RecoveryCode => "rc",
                    }
                    .to_owned(),
                );
                amr.push("mfa".to_owned());
            }
            (None, Some(Bypass::TrustedNetwork)) => amr.push("trusted_network".to_owned()),
            (None, Some(Bypass::RememberedDevice)) => amr.push("remembered_device".to_owned()),
            (None, None) => {}
        }
        Self { amr }
    }

    /// The stored form (space-separated).
    pub fn to_text(&self) -> String {
        self.amr.join(" ")
    }

    /// From the stored form; a session from before `amr` was kept says `pwd` (and `mfa`
    /// where its second factor is known to have been proven).
    pub fn from_text(text: Option<&str>, verified: bool) -> Self {
        match text {
            Some(t) if !t.is_empty() => Self {
                amr: t.split(' ').map(str::to_owned).collect(),
            },
            _ => {
                let mut amr = vec!["pwd".to_owned()];
                if verified {
                    amr.push("mfa".to_owned());
                }
                Self { amr }
            }
        }
    }

    /// Whether a second factor was proven.
    pub fn mfa(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
    }

    /// `urn:gatehouse:acr:mfa` when a second factor was proven, else `...:pwd`.
    pub fn acr(&self) -> &'static str {
        if self.mfa() { ACR_MFA } else { ACR_PWD }
    }
}

/// What the user's claims are made of, read by the app from the user and the practice.
#[derive(Debug, Clone)]
pub struct ClaimSource<'a> {
    pub sub: String,
    pub username: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub email: Option<&'a str>,
    pub email_verified: bool,
    pub phone: Option<&'a str>,
    pub phone_verified: bool,
    pub updated_at: i64,
    pub company: &'a str,
    pub company_name: &'a str,
    pub role: &'a str,
    pub groups: Vec<String>,
}

/// The claims about the user: in the ID token and in userinfo, by the granted scopes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserClaims {
    pub sub: String,
    pub company: String,
    pub company_name: String,
    pub role: String,
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number_verified: Option<bool>,
}

impl UserClaims {
    /// The claims `scopes` grant: `company`, `company_name`, `role` and `groups` always.
    /// An email address or phone number is given only when there is one.
    pub fn of(src: &ClaimSource<'_>, scopes: Scopes) -> Self {
        let name = format!("{} {}", src.first_name, src.last_name)
            .trim()
            .to_owned();
        let profile = scopes.profile;
        let email = src.email.filter(|_| scopes.email);
        let phone = src.phone.filter(|_| scopes.phone);
        UserClaims {
            sub: src.sub.clone(),
            company: src.company.to_owned(),
            company_name: src.company_name.to_owned(),
            role: src.role.to_owned(),
            groups: src.groups.clone(),
            preferred_username: profile.then(|| src.username.to_owned()),
            name: profile.then_some(name),
            given_name: profile.then(|| src.first_name.to_owned()),
            family_name: profile.then(|| src.last_name.to_owned()),
            updated_at: profile.then_some(src.updated_at),
            email_verified: email.map(|_| src.email_verified),
            email: email.map(str::to_owned),
            phone_number_verified: phone.map(|_| src.phone_verified),
            phone_number: phone.map(str::to_owned),
        }
    }
}

/// An ID token's claims (OIDC Core 2, and oidc.md's own).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    pub sid: String,
    pub acr: String,
    pub amr: Vec<String>,
    #[serde(flatten)]
    pub user: UserClaims,
}

/// Whether an existing browser session may answer an authorization request without a
/// page: not when the client asks to sign in again, when `max_age` has passed since the
/// sign-in, when a second factor is asked and the session proved none, or when the
/// request names another practice (oidc.md "Browser session and single sign-on").
pub fn session_answers(
    prompt: Option<Prompt>,
    max_age: Option<i64>,
    wants_mfa: bool,
    company_asked: Option<&str>,
    (auth_time, now, session_mfa, session_company): (i64, i64, bool, &str),
) -> bool {
    prompt != Some(Prompt::Login)
        && max_age.is_none_or(|m| now - auth_time <= m)
        && (!wants_mfa || session_mfa)
        && company_asked.is_none_or(|c| c.eq_ignore_ascii_case(session_company))
}

/// Parses `login_hint` as `company/username` (oidc.md): the company part pre-fills the
/// page; a hint without a slash is a user ID alone.
pub fn split_login_hint(hint: &str) -> (Option<&str>, &str) {
    match hint.split_once('/') {
        Some((company, user)) => (Some(company), user),
        None => (None, hint),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn i2_redirect_uris_are_https_or_loopback_http_without_fragments() {
        for ok in [
            "https://ehr.example/callback",
            "https://ehr.example:8443/cb?x=1",
            "http://localhost:8400/callback",
            "http://127.0.0.1/cb",
            "http://[::1]:9000/cb",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://ehr.example/callback",
            "https://ehr.example/cb#frag",
            "https://user:pw@ehr.example/cb",
            "javascript:alert(1)",
            "ehr.example/callback",
            " https://ehr.example/cb",
            "",
            "custom-scheme://cb",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn i1_scopes_need_openid_and_ignore_unknown_values() {
        assert_eq!(
            Scopes::parse("profile").map_err(|e| e.code),
            Err(ErrorCode::InvalidScope)
        );
        let s = Scopes::parse("openid  email offline_access made_up").unwrap_or_default();
        assert!(s.email && s.offline_access && !s.profile && !s.phone);
        assert_eq!(s.to_text(), "openid email offline_access");
    }

    #[test]
    fn i1_pkce_is_s256_only_and_matches_the_rfc_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verifier_matches(verifier, challenge));
        assert!(!verifier_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK",
            challenge
        ));
        assert!(!verifier_matches("short", challenge));
        assert_eq!(
            check_challenge(Some(challenge), Some("S256")),
            Ok(challenge.to_owned())
        );
        assert!(check_challenge(Some(challenge), Some("plain")).is_err());
        assert!(check_challenge(Some(challenge), None).is_err());
        assert!(check_challenge(None, Some("S256")).is_err());
        assert!(check_challenge(Some("abc"), Some("S256")).is_err());
    }

    #[test]
    fn i1_amr_and_acr_tell_how_the_user_signed_in() {
        let sms = AuthContext::of(Some(Factor::Sms), None);
        assert_eq!(sms.amr, ["pwd", "sms", "mfa"]);
        assert_eq!(sms.acr(), ACR_MFA);
        assert_eq!(
            AuthContext::of(Some(Factor::Totp), None).amr,
            ["pwd", "otp", "mfa"]
        );
        assert_eq!(
            AuthContext::of(Some(Factor::Email), None).amr,
            ["pwd", "mail", "mfa"]
        );
        let trusted = AuthContext::of(None, Some(Bypass::TrustedNetwork));
        assert_eq!(trusted.amr, ["pwd", "trusted_network"]);
        assert_eq!(trusted.acr(), ACR_PWD);
        assert_eq!(
            AuthContext::of(None, Some(Bypass::RememberedDevice)).amr,
            ["pwd", "remembered_device"]
        );
        let stored = sms.to_text();
        assert_eq!(AuthContext::from_text(Some(&stored), true), sms);
        assert_eq!(AuthContext::from_text(None, true).amr, ["pwd", "mfa"]);
        assert_eq!(AuthContext::from_text(None, false).amr, ["pwd"]);
    }

    #[test]
    fn i1_prompt_values() {
        assert_eq!(Prompt::parse(None), Ok(None));
        assert_eq!(Prompt::parse(Some("none")), Ok(Some(Prompt::None)));
        assert_eq!(
            Prompt::parse(Some("login consent")),
            Ok(Some(Prompt::Login))
        );
        assert_eq!(Prompt::parse(Some("consent")), Ok(None));
        assert!(Prompt::parse(Some("none login")).is_err());
        assert!(Prompt::parse(Some("create")).is_err());
    }

    #[test]
    fn i1_a_session_answers_unless_the_request_asks_more() {
        let s = (1_000, 1_100, false, "demo-clinic");
        assert!(session_answers(None, None, false, None, s));
        assert!(session_answers(
            None,
            Some(100),
            false,
            Some("DEMO-clinic"),
            s
        ));
        assert!(!session_answers(Some(Prompt::Login), None, false, None, s));
        assert!(!session_answers(None, Some(99), false, None, s));
        assert!(!session_answers(None, None, true, None, s));
        assert!(session_answers(
            None,
            None,
            true,
            None,
            (1_000, 1_100, true, "demo-clinic")
        ));
        assert!(!session_answers(None, None, false, Some("other"), s));
    }

    #[test]
    fn i1_claims_follow_the_scopes() {
        let src = ClaimSource {
            sub: "u-1".into(),
            username: "nurse.joy",
            first_name: "Joy",
            last_name: "Nurse",
            email: Some("joy@example.com"),
            email_verified: true,
            phone: None,
            phone_verified: false,
            updated_at: 5,
            company: "demo-clinic",
            company_name: "Demo Clinic",
            role: "staff",
            groups: vec!["Nurses".into()],
        };
        let bare = UserClaims::of(&src, Scopes::default());
        assert_eq!(bare.preferred_username, None);
        assert_eq!(bare.email, None);
        assert_eq!(bare.groups, ["Nurses"]);
        let all = UserClaims::of(
            &src,
            Scopes {
                profile: true,
                email: true,
                phone: true,
                offline_access: false,
            },
        );
        assert_eq!(all.preferred_username.as_deref(), Some("nurse.joy"));
        assert_eq!(all.name.as_deref(), Some("Joy Nurse"));
        assert_eq!(all.email_verified, Some(true));
        assert_eq!(all.phone_number, None);
        assert_eq!(all.phone_number_verified, None);
        let json = serde_json::to_value(&all).unwrap_or_default();
        assert!(json.get("phone_number").is_none());
        assert_eq!(json["company"], "demo-clinic");
    }
}
