//! Fetching a signing certificate: behind a trait so tests can count or fake fetches.

use futures_util::future::BoxFuture;
use std::time::Duration;
use url::Url;

/// Largest certificate body read (an SNS signing certificate is about 2 KiB).
pub const MAX_CERT_BYTES: usize = 64 * 1024;

/// Whole-request limit of a certificate fetch: the webhook answer waits on it.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Gets the bytes (PEM) at an already allowed SigningCertURL.
pub trait CertFetcher: Send + Sync {
    fn fetch<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<Vec<u8>, FetchError>>;
}

/// Why a certificate could not be fetched (as opposed to a signature that fails).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("the certificate request failed")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the certificate server answered HTTP {0}")]
    Status(u16),
    #[error("the certificate is larger than {MAX_CERT_BYTES} bytes")]
    TooLarge,
    #[error("too many certificate fetches in flight")]
    Busy,
}

/// Fetches over HTTP(S) with rustls: 5 s for the whole request, no redirects (a
/// redirect could lead outside the allowed prefixes), at most [`MAX_CERT_BYTES`].
#[derive(Debug, Clone)]
pub struct HttpCertFetcher {
    client: reqwest::Client,
}

impl HttpCertFetcher {
    /// Builds the HTTP client.
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| FetchError::Transport(Box::new(e)))?;
        Ok(Self { client })
    }

    async fn get(&self, url: &Url) -> Result<Vec<u8>, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport(Box::new(e));
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > MAX_CERT_BYTES as u64)
        {
            return Err(FetchError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_CERT_BYTES {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

impl CertFetcher for HttpCertFetcher {
    fn fetch<'a>(&'a self, url: &'a Url) -> BoxFuture<'a, Result<Vec<u8>, FetchError>> {
        Box::pin(self.get(url))
    }
}
