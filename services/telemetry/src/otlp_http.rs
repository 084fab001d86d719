//! OTLP over HTTP through the reqwest client already built for the rest of Gatehouse.
//!
//! The SDK's batch span processor and periodic metric reader export from threads of
//! their own, outside any async runtime; each request is therefore run on the telemetry
//! runtime and its answer awaited from wherever the exporter is.

use bytes::Bytes;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};

#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl Client {
    /// A client whose requests end after `OTEL_EXPORTER_OTLP_TIMEOUT` milliseconds
    /// (default 10 s, as the specification says).
    pub(crate) fn new(runtime: tokio::runtime::Handle) -> Self {
        let timeout = std::env::var("OTEL_EXPORTER_OTLP_TIMEOUT")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(std::time::Duration::from_millis)
            .unwrap_or(std::time::Duration::from_secs(10));
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { http, runtime }
    }
}

#[async_trait::async_trait]
impl HttpClient for Client {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let http = self.http.clone();
        let answer = self
            .runtime
            .spawn(async move {
                let response = http.execute(request).await?.error_for_status()?;
                let status = response.status();
                let headers = response.headers().clone();
                let body = response.bytes().await?;
                Ok::<_, reqwest::Error>((status, headers, body))
            })
            .await??;
        let (status, headers, body) = answer;
        let mut response = Response::builder().status(status).body(body)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}
