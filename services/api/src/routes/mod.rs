//! Routes, one module per area. Handlers are thin: parse, call the store, shape the answer.

pub mod audit;
pub mod auth;
pub mod escalations;
pub mod flows;
pub mod groups;
pub mod me;
pub mod mfa;
pub mod oidc_clients;
pub mod ops;
pub mod support;
pub mod tenants;
pub mod user_admin;
pub mod users;
pub mod webhooks;

use crate::error::ApiError;
use actix_web::{HttpResponse, web};

/// A resource whose unmatched methods answer 405 problem+json with `Allow: allow`.
///
/// The resource carries its path template for the request telemetry, which reads it
/// after routing instead of matching the path against every route a second time.
pub(crate) fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path)
        .app_data(crate::telemetry::Route(std::sync::Arc::from(path)))
        .default_service(web::to(move || async move {
            Err::<HttpResponse, _>(ApiError::method_not_allowed(allow))
        }))
}

/// A JSON body that may be omitted: an empty body, or JSON `null`, means every field takes
/// its default.
pub(crate) fn optional_body<T: serde::de::DeserializeOwned + Default>(
    req: &actix_web::HttpRequest,
    body: &web::Bytes,
) -> Result<T, ApiError> {
    use actix_web::http::StatusCode;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    if body.len() > crate::MAX_JSON_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Payload too large",
            format!("The body is larger than {} bytes.", crate::MAX_JSON_BYTES),
        ));
    }
    let json = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .is_some_and(|m| {
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        });
    if !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as application/json.",
        ));
    }
    serde_json::from_slice::<Option<T>>(body)
        .map(Option::unwrap_or_default)
        .map_err(|e| {
            let mut a = ApiError::validation(vec![gatehouse_domain::FieldError::new(
                "body",
                e.to_string(),
            )]);
            a.set_detail(if e.is_syntax() || e.is_eof() {
                "The body is not valid JSON."
            } else {
                "The body does not have the expected fields and types; see errors."
            });
            a
        })
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
        .service(
            resource("/v1/auth/flows/{flow_id}/code", "POST")
                .route(web::post().to(flows::send_code)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/verify", "POST")
                .route(web::post().to(flows::verify)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/enroll/totp", "POST")
                .route(web::post().to(flows::enroll_totp)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/enroll/totp/confirm", "POST")
                .route(web::post().to(flows::confirm_totp)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/enroll/{channel}", "POST")
                .route(web::post().to(flows::enroll_channel)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/enroll/{channel}/confirm", "POST")
                .route(web::post().to(flows::confirm_channel)),
        )
        .service(
            resource("/v1/auth/flows/{flow_id}/skip", "POST").route(web::post().to(flows::skip)),
        )
        .service(resource("/v1/auth/session", "GET").route(web::get().to(auth::session)))
        .service(resource("/v1/auth/logout", "POST").route(web::post().to(auth::logout)))
        .service(resource("/v1/me", "GET").route(web::get().to(me::me)))
        .service(resource("/v1/me/password", "POST").route(web::post().to(me::change_password)))
        .service(resource("/v1/me/mfa", "PUT").route(web::put().to(mfa::put_me_mfa)))
        .service(
            resource("/v1/me/mfa/totp", "POST, DELETE")
                .route(web::post().to(mfa::start_me_totp))
                .route(web::delete().to(mfa::delete_me_totp)),
        )
        .service(
            resource("/v1/me/mfa/totp/confirm", "POST").route(web::post().to(mfa::confirm_me_totp)),
        )
        .service(
            resource("/v1/me/recovery-codes", "POST")
                .route(web::post().to(mfa::regenerate_recovery_codes)),
        )
        .service(
            resource("/v1/me/contacts/{kind}", "POST").route(web::post().to(mfa::start_contact)),
        )
        .service(
            resource("/v1/me/contacts/{kind}/verify", "POST")
                .route(web::post().to(mfa::verify_contact)),
        )
        .service(resource("/v1/me/step-up/code", "POST").route(web::post().to(mfa::step_up_code)))
        .service(resource("/v1/me/step-up", "POST").route(web::post().to(mfa::step_up)))
        .service(resource("/v1/me/devices", "GET").route(web::get().to(mfa::my_devices)))
        .service(
            resource("/v1/me/devices/{device_id}", "DELETE")
                .route(web::delete().to(mfa::revoke_my_device)),
        )
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
            resource("/v1/tenants/{company}/suspend", "POST")
                .route(web::post().to(tenants::suspend)),
        )
        .service(
            resource("/v1/tenants/{company}/reactivate", "POST")
                .route(web::post().to(tenants::reactivate)),
        )
        .service(
            resource("/v1/tenants/{company}/users", "GET, POST")
                .route(web::get().to(users::list))
                .route(web::post().to(users::create)),
        )
        // Before `users/{user_id}`, which would otherwise take this path as a user.
        .service(
            resource(
                "/v1/tenants/{company}/users/require-password-change",
                "POST",
            )
            .route(web::post().to(users::require_password_change)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}", "GET, PATCH")
                .route(web::get().to(users::get))
                .route(web::patch().to(user_admin::patch)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/copy", "POST")
                .route(web::post().to(user_admin::copy)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/approve", "POST")
                .route(web::post().to(user_admin::approve)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/unlock", "POST")
                .route(web::post().to(user_admin::unlock)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/password", "POST")
                .route(web::post().to(user_admin::reset_password)),
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
            resource("/v1/tenants/{company}/users/{user_id}/mfa", "PUT, DELETE")
                .route(web::put().to(mfa::put_user_mfa))
                .route(web::delete().to(mfa::reset_user_mfa)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/devices", "GET")
                .route(web::get().to(mfa::user_devices)),
        )
        .service(
            resource("/v1/tenants/{company}/users/{user_id}/deliveries", "GET")
                .route(web::get().to(users::deliveries)),
        )
        .service(
            resource(
                "/v1/tenants/{company}/users/{user_id}/devices/{device_id}",
                "DELETE",
            )
            .route(web::delete().to(mfa::revoke_user_device)),
        )
        .service(
            resource("/v1/tenants/{company}/groups", "GET, POST")
                .route(web::get().to(groups::list))
                .route(web::post().to(groups::create)),
        )
        .service(
            resource("/v1/tenants/{company}/groups/{group_id}", "PATCH, DELETE")
                .route(web::patch().to(groups::rename))
                .route(web::delete().to(groups::delete)),
        )
        .service(
            resource(
                "/v1/tenants/{company}/groups/{group_id}/members",
                "GET, POST",
            )
            .route(web::get().to(groups::members))
            .route(web::post().to(groups::add_members)),
        )
        .service(
            resource(
                "/v1/tenants/{company}/groups/{group_id}/members/{user_id}",
                "PUT, DELETE",
            )
            .route(web::put().to(groups::add_member))
            .route(web::delete().to(groups::remove_member)),
        )
        .service(
            resource("/v1/tenants/{company}/trusted-networks", "GET, POST")
                .route(web::get().to(mfa::list_networks))
                .route(web::post().to(mfa::add_network)),
        )
        .service(
            resource("/v1/tenants/{company}/trusted-networks/{id}", "DELETE")
                .route(web::delete().to(mfa::remove_network)),
        )
        .service(
            resource("/v1/tenants/{company}/audit-events", "GET").route(web::get().to(audit::list)),
        )
        .service(
            resource("/v1/tenants/{company}/audit-events/verify", "GET")
                .route(web::get().to(audit::verify)),
        )
        .service(
            resource("/v1/tenants/{company}/escalations", "GET")
                .route(web::get().to(escalations::tenant_list)),
        )
        .service(
            resource("/v1/tenants/{company}/escalations/{id}/approve", "POST")
                .route(web::post().to(escalations::approve)),
        )
        .service(
            resource("/v1/tenants/{company}/escalations/{id}/deny", "POST")
                .route(web::post().to(escalations::deny)),
        )
        .service(resource("/v1/escalations", "POST").route(web::post().to(escalations::create)))
        .service(resource("/v1/escalations/{id}", "GET").route(web::get().to(escalations::get)))
        .service(
            resource("/v1/escalations/{id}/approve", "POST")
                .route(web::post().to(escalations::support_approve)),
        )
        .service(
            resource("/v1/escalations/{id}/execute", "POST")
                .route(web::post().to(escalations::execute)),
        )
        .service(resource("/v1/support/users", "GET").route(web::get().to(support::users)))
        .service(
            resource("/v1/support/deliveries", "GET").route(web::get().to(support::deliveries)),
        )
        .service(
            resource("/v1/support/phone-opt-outs/{e164}", "GET")
                .route(web::get().to(support::phone_opt_out)),
        )
        .service(
            resource("/v1/support/email-suppressions/{email}", "DELETE")
                .route(web::delete().to(support::lift_email_suppression)),
        )
        .service(
            resource("/v1/oidc/clients", "GET, POST")
                .route(web::get().to(oidc_clients::list))
                .route(web::post().to(oidc_clients::create)),
        )
        .service(
            resource("/v1/oidc/clients/{client_id}", "GET, PATCH, DELETE")
                .route(web::get().to(oidc_clients::get))
                .route(web::patch().to(oidc_clients::patch))
                .route(web::delete().to(oidc_clients::delete)),
        )
        .service(
            resource("/v1/oidc/clients/{client_id}/secret", "POST")
                .route(web::post().to(oidc_clients::rotate_secret)),
        )
        .service(resource("/v1/webhooks/aws/sns", "POST").route(web::post().to(webhooks::sns)))
        .service(resource("/healthz", "GET").route(web::get().to(ops::healthz)))
        .service(resource("/readyz", "GET").route(web::get().to(ops::readyz)))
        .service(resource("/metrics", "GET").route(web::get().to(ops::metrics)));
}
