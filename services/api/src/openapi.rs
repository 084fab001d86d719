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
        routes::flows::send_code,
        routes::flows::verify,
        routes::flows::enroll_totp,
        routes::flows::confirm_totp,
        routes::flows::enroll_channel,
        routes::flows::confirm_channel,
        routes::flows::skip,
        routes::auth::session,
        routes::auth::logout,
        routes::me::me,
        routes::me::change_password,
        routes::mfa::put_me_mfa,
        routes::mfa::start_me_totp,
        routes::mfa::confirm_me_totp,
        routes::mfa::delete_me_totp,
        routes::mfa::regenerate_recovery_codes,
        routes::mfa::start_contact,
        routes::mfa::verify_contact,
        routes::mfa::step_up_code,
        routes::mfa::step_up,
        routes::mfa::my_devices,
        routes::mfa::revoke_my_device,
        routes::tenants::list,
        routes::tenants::create,
        routes::tenants::get,
        routes::tenants::patch_settings,
        routes::tenants::suspend,
        routes::tenants::reactivate,
        routes::users::list,
        routes::users::create,
        routes::users::get,
        routes::users::require_password_change,
        routes::users::get_login_hours,
        routes::users::put_login_hours,
        routes::user_admin::patch,
        routes::user_admin::copy,
        routes::user_admin::approve,
        routes::user_admin::unlock,
        routes::user_admin::reset_password,
        routes::groups::list,
        routes::groups::create,
        routes::groups::rename,
        routes::groups::delete,
        routes::groups::members,
        routes::groups::add_members,
        routes::groups::add_member,
        routes::groups::remove_member,
        routes::users::deliveries,
        routes::mfa::put_user_mfa,
        routes::mfa::reset_user_mfa,
        routes::mfa::user_devices,
        routes::mfa::revoke_user_device,
        routes::mfa::list_networks,
        routes::mfa::add_network,
        routes::mfa::remove_network,
        routes::audit::list,
        routes::audit::verify,
        routes::escalations::tenant_list,
        routes::escalations::approve,
        routes::escalations::deny,
        routes::escalations::create,
        routes::escalations::get,
        routes::escalations::support_approve,
        routes::escalations::execute,
        routes::support::users,
        routes::support::deliveries,
        routes::support::phone_opt_out,
        routes::support::lift_email_suppression,
        routes::webhooks::sns,
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
    )
)]
pub struct ApiDoc;
