//! Shared state of the HTTP handlers.

use gatehouse_store::Store;
use ipnet::IpNet;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub store: Store,
    /// Proxies whose X-Forwarded-For is believed (GATEHOUSE_TRUSTED_PROXIES).
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// Verifies SNS webhook messages (GATEHOUSE_SNS_CERT_URL_PREFIXES).
    pub sns: crate::sns::Verifier,
    /// What `GET /metrics` serves; `None`: 404.
    pub metrics: Option<Arc<dyn crate::telemetry::MetricsText>>,
}
