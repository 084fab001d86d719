//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The Gatehouse HTTP API, version 1.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Sign-in and multi-factor authentication for medical practices."),
    modifiers(&BearerAuth),
    paths(
        routes::auth::login,
        routes::auth::flow_password,
        routes::auth::session,
        routes::auth::logout,
        routes::me::me,
        routes::me::change_password,
        routes::tenants::list,
        routes::tenants::create,
        routes::tenants::get,
        routes::tenants::patch_settings,
        routes::users::list,
        routes::users::create,
        routes::users::get,
        routes::users::get_login_hours,
        routes::users::put_login_hours,
        routes::audit::list,
        routes::audit::verify,
        routes::ops::healthz,
        routes::ops::readyz,
    )
)]
pub struct ApiDoc;
