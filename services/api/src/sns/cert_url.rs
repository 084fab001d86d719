//! Which SigningCertURLs may be fetched: those that start with a configured prefix and
//! name a file the way AWS names its signing certificates
//! (`SimpleNotificationService-<hex>.pem`).

use std::fmt;
use std::str::FromStr;
use url::Url;

/// One allowed SigningCertURL prefix (scheme, host, port and path), e.g.
/// `https://sns.eu-west-1.amazonaws.com/`. Only `https`, or `http` when the operator
/// says so explicitly (tests serve certificates from `http://127.0.0.1:<port>/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUrlPrefix {
    url: Url,
}

/// Why a configured prefix is refused at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertUrlPrefixError {
    #[error("{0:?} is not a URL: {1}")]
    Unparsable(String, url::ParseError),
    #[error("{0:?} must use https (or http)")]
    Scheme(String),
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{0:?} must not carry a user name or password")]
    UserInfo(String),
    #[error("{0:?} must not have a query or fragment")]
    QueryOrFragment(String),
    #[error("{0:?} is not an AWS region name")]
    Region(String),
}

impl CertUrlPrefix {
    /// Parses a prefix. A prefix with an empty path ends with the host
    /// (`https://host` is kept as `https://host/`), so it cannot be extended by a
    /// longer host name.
    pub fn parse(text: &str) -> Result<Self, CertUrlPrefixError> {
        let url = Url::parse(text.trim())
            .map_err(|e| CertUrlPrefixError::Unparsable(text.to_owned(), e))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(CertUrlPrefixError::Scheme(text.to_owned()));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(CertUrlPrefixError::NoHost(text.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() || text.contains('@') {
            return Err(CertUrlPrefixError::UserInfo(text.to_owned()));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(CertUrlPrefixError::QueryOrFragment(text.to_owned()));
        }
        Ok(Self { url })
    }

    /// The default prefix for a region: `https://sns.<region>.amazonaws.com/`.
    pub fn default_for_region(region: &str) -> Result<Self, CertUrlPrefixError> {
        let valid = !region.is_empty()
            && region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(CertUrlPrefixError::Region(region.to_owned()));
        }
        Self::parse(&format!("https://sns.{region}.amazonaws.com/"))
    }

    /// The prefix in its normalised form (the one URLs are compared with).
    pub fn as_str(&self) -> &str {
        self.url.as_str()
    }

    fn admits(&self, raw: &str, candidate: &Url) -> bool {
        // The string prefix is the contract; the parsed comparison guards against a
        // parser reading the same string differently (host, port, dot segments).
        raw.starts_with(self.url.as_str())
            && candidate.scheme() == self.url.scheme()
            && candidate.host_str() == self.url.host_str()
            && candidate.port_or_known_default() == self.url.port_or_known_default()
            && candidate.path().starts_with(self.url.path())
    }
}

impl FromStr for CertUrlPrefix {
    type Err = CertUrlPrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for CertUrlPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a SigningCertURL is refused (it is then never fetched).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertUrlError {
    #[error("the SigningCertURL is not a URL")]
    Unparsable,
    #[error("the SigningCertURL carries user information")]
    UserInfo,
    #[error("the SigningCertURL matches no allowed prefix")]
    NotAllowed,
    #[error("the SigningCertURL does not name a file SimpleNotificationService-<hex>.pem")]
    NotAwsName,
}

/// Longest `<hex>` of a certificate file name accepted (AWS's are 32).
const MAX_NAME_HEX: usize = 64;

/// Whether the URL names a file as AWS names its signing certificates, with nothing
/// after it: `.../SimpleNotificationService-<hex>.pem`. Anything else under an allowed
/// host (another file, a redirector, an upload) is not a signing certificate.
fn is_aws_certificate_name(url: &Url) -> bool {
    if url.query().is_some() || url.fragment().is_some() {
        return false;
    }
    let file = url.path().rsplit('/').next().unwrap_or("");
    file.strip_prefix("SimpleNotificationService-")
        .and_then(|rest| rest.strip_suffix(".pem"))
        .is_some_and(|hex| {
            (1..=MAX_NAME_HEX).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        })
}

/// The allowed prefixes (`GATEHOUSE_SNS_CERT_URL_PREFIXES`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertUrlPolicy {
    prefixes: Vec<CertUrlPrefix>,
}

impl CertUrlPolicy {
    /// A policy allowing exactly these prefixes (none: every URL is refused).
    pub fn new(prefixes: Vec<CertUrlPrefix>) -> Self {
        Self { prefixes }
    }

    /// The allowed prefixes.
    pub fn prefixes(&self) -> &[CertUrlPrefix] {
        &self.prefixes
    }

    /// The URL to fetch, if `raw` starts with an allowed prefix and names an AWS signing
    /// certificate file.
    pub fn check(&self, raw: &str) -> Result<Url, CertUrlError> {
        // SNS never puts user information in a SigningCertURL; an '@' anywhere is the
        // classic way to make a URL read as one host and fetch from another.
        if raw.contains('@') {
            return Err(CertUrlError::UserInfo);
        }
        let candidate = Url::parse(raw).map_err(|_| CertUrlError::Unparsable)?;
        if !candidate.username().is_empty() || candidate.password().is_some() {
            return Err(CertUrlError::UserInfo);
        }
        if !self.prefixes.iter().any(|p| p.admits(raw, &candidate)) {
            return Err(CertUrlError::NotAllowed);
        }
        if !is_aws_certificate_name(&candidate) {
            return Err(CertUrlError::NotAwsName);
        }
        Ok(candidate)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn policy(prefixes: &[&str]) -> CertUrlPolicy {
        CertUrlPolicy::new(prefixes.iter().map(|p| p.parse().unwrap()).collect())
    }

    const CERT: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-01d088a6f77103d0fe307c0069e40ed6.pem";

    #[test]
    fn d6_default_prefix_admits_the_regional_sns_certificate() {
        let p = CertUrlPolicy::new(vec![
            CertUrlPrefix::default_for_region("us-east-1").unwrap(),
        ]);
        assert_eq!(
            p.prefixes()[0].as_str(),
            "https://sns.us-east-1.amazonaws.com/"
        );
        assert_eq!(p.check(CERT).unwrap().as_str(), CERT);
    }

    #[test]
    fn d6_other_regions_hosts_and_schemes_are_refused() {
        let p = policy(&["https://sns.us-east-1.amazonaws.com/"]);
        for url in [
            "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-x.pem",
            "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-x.pem",
            "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-x.pem",
            "https://evil.example/https://sns.us-east-1.amazonaws.com/x.pem",
            " https://sns.us-east-1.amazonaws.com/x.pem",
            "HTTPS://sns.us-east-1.amazonaws.com/x.pem",
            "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/x.pem",
        ] {
            assert_eq!(p.check(url), Err(CertUrlError::NotAllowed), "{url}");
        }
    }

    #[test]
    fn d6_userinfo_tricks_are_refused() {
        let p = policy(&["https://sns.us-east-1.amazonaws.com/"]);
        for url in [
            "https://sns.us-east-1.amazonaws.com@evil.example/x.pem",
            "https://sns.us-east-1.amazonaws.com:443@evil.example/x.pem",
            "https://sns.us-east-1.amazonaws.com/@evil.example/x.pem",
            "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
        ] {
            assert_eq!(p.check(url), Err(CertUrlError::UserInfo), "{url}");
        }
    }

    #[test]
    fn d6_a_prefix_without_trailing_slash_still_ends_at_the_host() {
        let p = policy(&["https://sns.us-east-1.amazonaws.com"]);
        assert!(p.check(CERT).is_ok());
        assert_eq!(
            p.check("https://sns.us-east-1.amazonaws.com.evil.example/x.pem"),
            Err(CertUrlError::NotAllowed)
        );
    }

    #[test]
    fn d6_path_prefixes_hold_after_dot_segments() {
        let p = policy(&["http://127.0.0.1:8080/certs/"]);
        assert!(
            p.check("http://127.0.0.1:8080/certs/SimpleNotificationService-0a.pem")
                .is_ok()
        );
        for url in [
            "http://127.0.0.1:8080/certs/../secret.pem",
            "http://127.0.0.1:8080/certs/%2e%2e/secret.pem",
            "http://127.0.0.1:8080/other/a.pem",
            "https://127.0.0.1:8080/certs/a.pem",
            "http://127.0.0.1:8081/certs/a.pem",
        ] {
            assert_eq!(p.check(url), Err(CertUrlError::NotAllowed), "{url}");
        }
    }

    #[test]
    fn d6_only_files_named_like_aws_certificates_are_admitted() {
        let p = policy(&["https://sns.us-east-1.amazonaws.com/"]);
        let base = "https://sns.us-east-1.amazonaws.com/";
        assert!(
            p.check(&format!(
                "{base}SimpleNotificationService-01D088A6F77103D0FE307C0069E40ED6.pem"
            ))
            .is_ok()
        );
        for name in [
            "evil.pem",
            "SimpleNotificationService-.pem",
            "SimpleNotificationService-xyz.pem",
            "SimpleNotificationService-0a.pem.exe",
            "SimpleNotificationService-0a.crt",
            "SimpleNotificationService-0a.pem/",
            "SimpleNotificationService-0a.pem/x",
            "SimpleNotificationService-0a.pem?x=1",
            "SimpleNotificationService-0a.pem#x",
            "x/SimpleNotificationService-0a%2epem",
            "simplenotificationservice-0a.pem",
            "",
        ] {
            assert_eq!(
                p.check(&format!("{base}{name}")),
                Err(CertUrlError::NotAwsName),
                "{name}"
            );
        }
        let long = format!("{base}SimpleNotificationService-{}.pem", "a".repeat(65));
        assert_eq!(p.check(&long), Err(CertUrlError::NotAwsName));
    }

    #[test]
    fn d6_no_prefixes_refuse_everything_and_garbage_is_unparsable() {
        assert_eq!(policy(&[]).check(CERT), Err(CertUrlError::NotAllowed));
        assert_eq!(
            policy(&["https://sns.us-east-1.amazonaws.com/"]).check("not a url"),
            Err(CertUrlError::Unparsable)
        );
    }

    #[test]
    fn d6_bad_prefixes_are_refused_at_start_up() {
        assert!(matches!(
            CertUrlPrefix::parse("sns.us-east-1.amazonaws.com"),
            Err(CertUrlPrefixError::Unparsable(..))
        ));
        assert!(matches!(
            CertUrlPrefix::parse("ftp://sns.us-east-1.amazonaws.com/"),
            Err(CertUrlPrefixError::Scheme(_))
        ));
        assert!(matches!(
            CertUrlPrefix::parse("https://u@sns.us-east-1.amazonaws.com/"),
            Err(CertUrlPrefixError::UserInfo(_))
        ));
        assert!(matches!(
            CertUrlPrefix::parse("https://sns.us-east-1.amazonaws.com/?a=b"),
            Err(CertUrlPrefixError::QueryOrFragment(_))
        ));
        assert!(matches!(
            CertUrlPrefix::default_for_region("us-east-1.evil.example/"),
            Err(CertUrlPrefixError::Region(_))
        ));
    }
}
