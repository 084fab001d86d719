//! Routes, one module per area. Handlers are thin: parse, call the store, shape the answer.

pub mod audit;
pub mod auth;
pub mod me;
pub mod ops;
pub mod tenants;
pub mod users;

use crate::error::ApiError;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

/// 405 for a known path with another method.
async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_supported",
        "Method not allowed",
        "This path does not support that HTTP method.",
    ))
}

/// A resource whose unmatched methods answer 405 problem+json.
pub(crate) fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// 404 problem+json for any unknown path.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/auth/login").route(web::post().to(auth::login)))
        .service(
            resource("/v1/auth/flows/{flow_id}/password")
                .route(web::post().to(auth::flow_password)),
        )
        .service(resource("/v1/auth/session").route(web::get().to(auth::session)))
        .service(resource("/v1/auth/logout").route(web::post().to(auth::logout)))
        .service(resource("/v1/me").route(web::get().to(me::me)))
        .service(resource("/v1/me/password").route(web::post().to(me::change_password)))
        .service(
            resource("/v1/tenants")
                .route(web::get().to(tenants::list))
                .route(web::post().to(tenants::create)),
        )
        .service(resource("/v1/tenants/{company}").route(web::get().to(tenants::get)))
        .service(
            resource("/v1/tenants/{company}/settings")
                .route(web::patch().to(tenants::patch_settings)),
        )
        .service(
            resource("/v1/tenants/{company}/users")
                .route(web::get().to(users::list))
                .route(web::post().to(users::create)),
        )
        .service(resource("/v1/tenants/{company}/users/{user_id}").route(web::get().to(users::get)))
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/login-hours")
                .route(web::get().to(users::get_login_hours))
                .route(web::put().to(users::put_login_hours)),
        )
        .service(resource("/v1/tenants/{company}/audit-events").route(web::get().to(audit::list)))
        .service(
            resource("/v1/tenants/{company}/audit-events/verify")
                .route(web::get().to(audit::verify)),
        )
        .service(resource("/healthz").route(web::get().to(ops::healthz)))
        .service(resource("/readyz").route(web::get().to(ops::readyz)))
        .service(resource("/openapi.json").route(web::get().to(ops::openapi)))
        .service(resource("/docs").route(web::get().to(ops::docs)));
}
