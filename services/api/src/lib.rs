//! Gatehouse HTTP API on actix-web: routes, extractors, problem+json errors, OpenAPI.

pub mod dto;
pub mod error;
pub mod extract;
pub mod input;
pub mod oauth;
pub mod openapi;
pub mod params;
pub mod reference;
pub mod routes;
pub mod sns;
pub mod state;
pub mod telemetry;
pub mod vocabulary;

use actix_web::web;

pub use state::{ApiState, MetricsText};
pub use telemetry::RequestTelemetry;

/// Largest JSON body accepted; every request body of the API is far smaller.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// Registers state, body limits, error shapes and every route on an `App`.
pub fn configure(state: ApiState) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let data = web::Data::new(state);
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(data.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_JSON_BYTES)
                    .error_handler(error::rejections::json),
            )
            .app_data(web::QueryConfig::default().error_handler(error::rejections::query))
            .app_data(web::PathConfig::default().error_handler(error::rejections::path))
            .configure(oauth::configure)
            .configure(routes::configure)
            .configure(openapi::configure)
            .default_service(web::to(routes::unknown_route));
    }
}
