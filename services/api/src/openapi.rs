//! The OpenAPI document, generated from the handlers' annotations.

use crate::routes;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{Ref, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr};
use utoipa::{Modify, OpenApi};

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

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

/// Makes every operation list the error answers the server gives it, in one place rather
/// than on each of the routes: the problem media type on every `Problem` answer, and the
/// answers of the shared layers (the bearer extractor: 401; the JSON, query and path
/// extractors: 422, 413, 415, 404), which a route's own annotation need not repeat.
struct ProblemResponses;

fn problem_response(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
        .into()
}

/// The description of a status whose route did not give one.
fn standard_description(status: &str) -> &'static str {
    match status {
        "200" => "OK",
        "201" => "Created",
        "202" => "Accepted",
        "204" => "No content",
        "400" => "bad_request",
        "401" => "unauthenticated: no session token, or not a live one",
        "403" => "forbidden",
        "404" => "not_found",
        "409" => "conflict",
        "410" => "gone",
        "413" => "payload_too_large",
        "415" => "unsupported_media_type",
        "422" => "validation_failed: `errors` lists each bad field ({field, message})",
        "423" => "account_locked",
        "429" => "rate_limited",
        "503" => "unavailable",
        _ => "See the problem's code",
    }
}

fn is_problem(schema: Option<&RefOr<utoipa::openapi::schema::Schema>>) -> bool {
    matches!(schema, Some(RefOr::Ref(r)) if r.ref_location.ends_with("/Problem"))
}

fn add_problem_responses(op: &mut Operation) {
    let responses = &mut op.responses.responses;
    // Problems declared with `body = Problem` come out as application/json.
    for r in responses.values_mut() {
        let RefOr::T(r) = r else { continue };
        let problem = r
            .content
            .get("application/json")
            .is_some_and(|c| matches!(c, RefOr::T(c) if is_problem(c.schema.as_ref())));
        if problem && let Some(c) = r.content.shift_remove("application/json") {
            r.content.insert(PROBLEM_JSON.to_owned(), c);
        }
    }
    // A response without a description is not valid OpenAPI; name the usual problem codes.
    for (status, r) in responses.iter_mut() {
        if let RefOr::T(r) = r
            && r.description.is_empty()
        {
            r.description = standard_description(status).to_owned();
        }
    }
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| problem_response(description));
    };
    let params = op.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| {
        params
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    // A JSON body goes through the JSON extractor (or `optional_body`), with its refusals.
    let json_body =
        matches!(&op.request_body, Some(RefOr::T(b)) if b.content.contains_key("application/json"));
    if json_body {
        add("413", "payload_too_large: the body is over 64 KiB");
        add(
            "415",
            "unsupported_media_type: the body is not application/json",
        );
    }
    if json_body || has(ParameterIn::Query) {
        add(
            "422",
            "validation_failed: `errors` lists each bad field ({field, message})",
        );
    }
    if has(ParameterIn::Path) {
        add("404", "not_found");
    }
    let bearer = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if bearer {
        add(
            "401",
            "unauthenticated: no session token, or not a live one",
        );
        if let Some(RefOr::T(r)) = op.responses.responses.get_mut("401") {
            r.headers
                .entry("WWW-Authenticate".to_owned())
                .or_insert_with(|| {
                    RefOr::T({
                        let mut h = Header::new(ObjectBuilder::new().schema_type(Type::String));
                        h.description = Some("Bearer".to_owned());
                        h
                    })
                });
        }
    }
}

impl Modify for ProblemResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_problem_responses(op);
            }
        }
    }
}

/// The Gatehouse HTTP API, version 1.
#[derive(OpenApi)]
#[openapi(
    info(title = "Gatehouse", description = "Sign-in and multi-factor authentication for medical practices."),
    modifiers(&BearerAuth, &ProblemResponses),
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
        routes::oidc_clients::list,
        routes::oidc_clients::create,
        routes::oidc_clients::get,
        routes::oidc_clients::patch,
        routes::oidc_clients::delete,
        routes::oidc_clients::rotate_secret,
        routes::webhooks::sns,
        routes::ops::healthz,
        routes::ops::readyz,
        routes::ops::metrics,
    )
)]
pub struct ApiDoc;

/// Registers the document and the reference rendered from it. Beside the routes, not
/// among them: the document is made from the routes.
pub fn configure(cfg: &mut actix_web::web::ServiceConfig) {
    use actix_web::web;
    cfg.service(routes::resource("/openapi.json", "GET").route(web::get().to(document)))
        .service(routes::resource("/docs", "GET").route(web::get().to(reference)));
}

/// The OpenAPI document, generated from the code.
async fn document() -> actix_web::HttpResponse {
    actix_web::HttpResponse::Ok().json(ApiDoc::openapi())
}

/// The API reference, rendered once from the OpenAPI document: plain HTML with no script
/// and nothing from another origin, under a Content-Security-Policy that allows only its
/// own inline style sheet.
async fn reference() -> actix_web::HttpResponse {
    static PAGE: std::sync::LazyLock<crate::reference::Reference> =
        std::sync::LazyLock::new(|| {
            let doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
            crate::reference::render(&doc)
        });
    actix_web::HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", PAGE.csp.as_str()))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(PAGE.html.clone())
}
