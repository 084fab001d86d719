//! Shared state of the HTTP handlers, and what the state knows of a request's origin.

use actix_web::HttpRequest;
use ipnet::IpNet;
use std::net::IpAddr;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct ApiState {
    /// The use cases, and the reads that decide nothing: all a handler calls.
    pub app: gatehouse_app::App,
    /// The OpenID Connect issuer: GATEHOUSE_PUBLIC_URL's origin (no trailing slash).
    pub issuer: String,
    /// Proxies whose X-Forwarded-For is believed (GATEHOUSE_TRUSTED_PROXIES).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// Verifies SNS webhook messages (GATEHOUSE_SNS_CERT_URL_PREFIXES).
    pub sns: crate::sns::Verifier,
    /// What `GET /metrics` serves; `None`: 404.
    pub metrics: Option<Arc<dyn MetricsText>>,
}

/// What `GET /metrics` serves: the process's metrics in the Prometheus text format.
pub trait MetricsText: Send + Sync + std::fmt::Debug + 'static {
    /// The current text.
    fn render(&self) -> Result<String, String>;
}

impl ApiState {
    /// The client's address: the socket peer, or the first address in X-Forwarded-For
    /// that is not one of our trusted proxies when the peer is a trusted proxy (M8).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|a| a.ip())?;
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok());
        Some(gatehouse_domain::networks::client_ip(
            peer,
            forwarded,
            &self.trusted_proxies,
        ))
    }
}
