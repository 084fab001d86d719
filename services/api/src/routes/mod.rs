//! Routes, one module per area. Handlers are thin: parse, call the store, shape the answer.

pub mod audit;
pub mod auth;
pub mod me;
pub mod ops;
pub mod tenants;
pub mod users;

use crate::error::ApiError;
use actix_web::{HttpResponse, web};

/// A resource whose unmatched methods answer 405 problem+json with `Allow: allow`.
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
    }))
}

/// 404 problem+json for any unknown path.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found())
}

/// Registers every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/auth/login", "POST").route(web::post().to(auth::login)))
        .service(
            resource("/v1/auth/flows/{flow_id}/password", "POST")
                .route(web::post().to(auth::flow_password)),
        )
        .service(resource("/v1/auth/session", "GET").route(web::get().to(auth::session)))
        .service(resource("/v1/auth/logout", "POST").route(web::post().to(auth::logout)))
        .service(resource("/v1/me", "GET").route(web::get().to(me::me)))
        .service(resource("/v1/me/password", "POST").route(web::post().to(me::change_password)))
        .service(
            resource("/v1/tenants", "GET, POST")
                .route(web::get().to(tenants::list))
                .route(web::post().to(tenants::create)),
        )
        .service(resource("/v1/tenants/{company}", "GET").route(web::get().to(tenants::get)))
        .service(
            resource("/v1/tenants/{company}/settings", "PATCH")
                .route(web::patch().to(tenants::patch_settings)),
        )
        .service(
            resource("/v1/tenants/{company}/users", "GET, POST")
                .route(web::get().to(users::list))
                .route(web::post().to(users::create)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}", "GET")
                .route(web::get().to(users::get)),
        )
        .service(
            resource(
                "/v1/tenants/{company}/users/{user_id}/login-hours",
                "GET, PUT",
            )
            .route(web::get().to(users::get_login_hours))
            .route(web::put().to(users::put_login_hours)),
        )
        .service(
            resource("/v1/tenants/{company}/audit-events", "GET").route(web::get().to(audit::list)),
        )
        .service(
            resource("/v1/tenants/{company}/audit-events/verify", "GET")
                .route(web::get().to(audit::verify)),
        )
        .service(resource("/healthz", "GET").route(web::get().to(ops::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(ops::readyz)))
        .service(resource("/openapi.json", "GET").route(web::get().to(ops::openapi)))
        .service(resource("/docs", "GET").route(web::get().to(ops::docs)));
}
