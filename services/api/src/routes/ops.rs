//! Health, readiness and metrics. (The API's own description is served by `openapi`.)

use crate::dto::Health;
use crate::error::ApiError;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};

/// The process is alive.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        database: None,
    })
}

/// The database answers (503 otherwise).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn readyz(st: web::Data<ApiState>) -> HttpResponse {
    match st.app.deployment().ping().await {
        Ok(()) => HttpResponse::Ok().json(Health {
            status: "ready".into(),
            database: Some("ok".into()),
        }),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(Health {
                status: "unavailable".into(),
                database: Some("unreachable".into()),
            })
        }
    }
}

/// The process's metrics in the Prometheus text format (A2).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(st: web::Data<ApiState>) -> Result<HttpResponse, ApiError> {
    let Some(m) = st.metrics.as_ref() else {
        return Err(ApiError::not_found());
    };
    match m.render() {
        Ok(text) => Ok(HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body(text)),
        Err(e) => {
            tracing::error!(error = %e, "metrics could not be read");
            Err(ApiError::internal(&std::io::Error::other(e)))
        }
    }
}
