//! Confirming SNS subscriptions (D6): a verified SubscriptionConfirmation is confirmed by
//! visiting its SubscribeURL, but only when that URL starts with an allowed prefix (the
//! same allow-list the webhook trusts certificates from), is https (or the prefix itself
//! is http, which tests use on 127.0.0.1), and carries no userinfo. Anything else is
//! logged and left for an operator.

use std::time::Duration;

/// Visits allow-listed SubscribeURLs.
#[derive(Debug, Clone)]
pub struct SubscriptionConfirmer {
    prefixes: Vec<String>,
    client: reqwest::Client,
}

/// Why a confirmation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ConfirmError {
    #[error("the SubscribeURL is not under an allowed prefix")]
    NotAllowed,
    #[error("visiting the SubscribeURL failed: {0}")]
    Visit(String),
}

impl SubscriptionConfirmer {
    /// A confirmer for URLs under `prefixes` (e.g. `https://sns.us-east-1.amazonaws.com/`).
    pub fn new(prefixes: Vec<String>) -> Result<Self, ConfirmError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfirmError::Visit(e.to_string()))?;
        Ok(Self { prefixes, client })
    }

    /// Whether the URL may be visited.
    pub fn allows(&self, url: &str) -> bool {
        let Ok(parsed) = url::Url::parse(url) else {
            return false;
        };
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return false;
        }
        self.prefixes.iter().any(|p| {
            url.starts_with(p.as_str()) && (parsed.scheme() == "https" || p.starts_with("http://"))
        })
    }

    /// Confirms the subscription by a GET on `url`.
    pub async fn confirm(&self, url: &str) -> Result<(), ConfirmError> {
        if !self.allows(url) {
            return Err(ConfirmError::NotAllowed);
        }
        let r = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| ConfirmError::Visit(e.without_url().to_string()))?;
        if r.status().is_success() {
            Ok(())
        } else {
            Err(ConfirmError::Visit(format!("HTTP {}", r.status().as_u16())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn d6_only_allow_listed_https_urls_without_userinfo_are_visited() {
        let c = SubscriptionConfirmer::new(vec!["https://sns.us-east-1.amazonaws.com/".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(
            c.allows("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x")
        );
        for bad in [
            "https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription",
            "https://user@sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
            "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription",
            "not a url",
        ] {
            assert!(!c.allows(bad), "{bad}");
        }
    }
}
