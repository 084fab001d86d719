//! Second factors outside sign-in: one's own (method, authenticator, recovery codes,
//! contacts, step-up, devices) and an admin's (a user's MFA, devices, trusted networks).

use crate::dto::{
    AdminMfaRequest, ChannelRequest, CodeRequest, CodeSentDto, ContactRequest, DeviceDto, ListOf,
    NetworkDto, NetworkRequest, RecoveryCodesDto, SetMethodRequest, StepUpRequest,
    TotpEnrollmentDto, TotpStartRequest, UserDto,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, Meta, TenantAdmin, TenantReader};
use crate::routes::optional_body;
use crate::routes::users::user_ref;
use crate::state::ApiState;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::mfa::NewNetwork;
use gatehouse_domain::mfa::codes::Channel;
use gatehouse_store::scope::UserRef;
use secrecy::ExposeSecret;
use uuid::Uuid;

/// `email` or `phone` in a path.
fn contact_kind(raw: &str) -> Result<Channel, ApiError> {
    match raw {
        "email" => Ok(Channel::Email),
        "phone" => Ok(Channel::Sms),
        _ => Err(ApiError::not_found()),
    }
}

fn uuid_segment(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// Sets one's own MFA method (self-service permission and step-up needed).
#[utoipa::path(put, path = "/v1/me/mfa", tag = "self-service", security(("bearer" = [])),
    request_body = SetMethodRequest,
    responses(
        (status = 200, body = UserDto),
        (status = 401, body = Problem),
        (status = 403, description = "forbidden (no self-service), step_up_required", body = Problem),
        (status = 409, description = "method_not_allowed, destination_unverified, no_destination, conflict", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn put_me_mfa(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    body: web::Json<SetMethodRequest>,
) -> Result<HttpResponse, ApiError> {
    let method = body.into_inner().method.value("method")?;
    let user = st.app.mfa().set_own_method(&p, method, &meta).await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &p.tenant)))
}

/// Starts enrolling an authenticator app for oneself.
#[utoipa::path(post, path = "/v1/me/mfa/totp", tag = "self-service", security(("bearer" = [])),
    request_body(content = Option<TotpStartRequest>, description = "May be omitted"),
    responses(
        (status = 200, body = TotpEnrollmentDto),
        (status = 401, body = Problem),
        (status = 403, description = "forbidden, step_up_required", body = Problem),
        (status = 409, description = "method_not_allowed, conflict (already enrolled)", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn start_me_totp(
    st: web::Data<ApiState>,
    req: HttpRequest,
    Auth(p): Auth,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: TotpStartRequest = optional_body(&req, &body)?;
    let e = st.app.mfa().start_own_totp(&p, b.label).await?;
    Ok(HttpResponse::Ok().json(TotpEnrollmentDto::from(e)))
}

/// Completes one's authenticator enrollment; answers the recovery codes, shown once.
#[utoipa::path(post, path = "/v1/me/mfa/totp/confirm", tag = "self-service", security(("bearer" = [])),
    request_body = CodeRequest,
    responses(
        (status = 200, body = RecoveryCodesDto),
        (status = 400, description = "mfa_code_invalid", body = Problem),
        (status = 401, body = Problem),
        (status = 409, body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn confirm_me_totp(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let codes = st
        .app
        .mfa()
        .confirm_own_totp(&p, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesDto {
        recovery_codes: codes,
    }))
}

/// Removes one's authenticator and its recovery codes (step-up needed).
#[utoipa::path(delete, path = "/v1/me/mfa/totp", tag = "self-service", security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, body = Problem),
        (status = 403, description = "forbidden, step_up_required", body = Problem),
        (status = 404, body = Problem),
    ))]
pub async fn delete_me_totp(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
) -> Result<HttpResponse, ApiError> {
    st.app.mfa().remove_own_totp(&p, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new set of recovery codes; the old ones die (step-up needed).
#[utoipa::path(post, path = "/v1/me/recovery-codes", tag = "self-service", security(("bearer" = [])),
    responses(
        (status = 200, body = RecoveryCodesDto),
        (status = 401, body = Problem),
        (status = 403, description = "step_up_required", body = Problem),
        (status = 409, description = "conflict: no authenticator", body = Problem),
    ))]
pub async fn regenerate_recovery_codes(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
) -> Result<HttpResponse, ApiError> {
    let codes = st
        .app
        .mfa()
        .regenerate_own_recovery_codes(&p, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(RecoveryCodesDto {
        recovery_codes: codes,
    }))
}

/// Sends a verification code to a new email address or phone number (M10).
#[utoipa::path(post, path = "/v1/me/contacts/{kind}", tag = "self-service", security(("bearer" = [])),
    params(("kind" = inline(crate::vocabulary::ContactKind), Path)),
    request_body = ContactRequest,
    responses(
        (status = 202, body = CodeSentDto),
        (status = 401, body = Problem),
        (status = 403, description = "step_up_required", body = Problem),
        (status = 422, body = Problem),
        (status = 429, description = "rate_limited", body = Problem),
    ))]
pub async fn start_contact(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    path: web::Path<String>,
    body: web::Json<ContactRequest>,
) -> Result<HttpResponse, ApiError> {
    let channel = contact_kind(&path)?;
    let sent = st
        .app
        .mfa()
        .start_own_contact(&p, channel, &body.value, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(CodeSentDto::from(sent)))
}

/// Proves the new address with its code; it becomes the verified email or phone.
#[utoipa::path(post, path = "/v1/me/contacts/{kind}/verify", tag = "self-service", security(("bearer" = [])),
    params(("kind" = inline(crate::vocabulary::ContactKind), Path)),
    request_body = CodeRequest,
    responses(
        (status = 200, body = UserDto),
        (status = 400, description = "mfa_code_invalid", body = Problem),
        (status = 401, body = Problem),
        (status = 409, body = Problem),
        (status = 410, description = "mfa_code_expired", body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn verify_contact(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    path: web::Path<String>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let channel = contact_kind(&path)?;
    let user = st
        .app
        .mfa()
        .verify_own_contact(&p, channel, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &p.tenant)))
}

/// Sends a step-up code to one of one's proven channels.
#[utoipa::path(post, path = "/v1/me/step-up/code", tag = "self-service", security(("bearer" = [])),
    request_body = ChannelRequest,
    responses(
        (status = 202, body = CodeSentDto),
        (status = 401, body = Problem),
        (status = 409, description = "method_not_allowed, no_destination, destination_unverified", body = Problem),
        (status = 429, description = "rate_limited", body = Problem),
    ))]
pub async fn step_up_code(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    body: web::Json<ChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let channel = body.into_inner().channel.value("channel")?;
    let sent = st.app.mfa().step_up_code(&p, channel, &meta).await?;
    Ok(HttpResponse::Accepted().json(CodeSentDto::from(sent)))
}

/// Proves a second factor now; sensitive operations are allowed for 15 minutes (M11).
#[utoipa::path(post, path = "/v1/me/step-up", tag = "self-service", security(("bearer" = [])),
    request_body = StepUpRequest,
    responses(
        (status = 204),
        (status = 400, description = "mfa_code_invalid", body = Problem),
        (status = 401, body = Problem),
        (status = 409, description = "method_not_allowed, conflict", body = Problem),
        (status = 410, description = "mfa_code_expired", body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn step_up(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    body: web::Json<StepUpRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let method = b.method.value("method")?;
    let result = st
        .app
        .mfa()
        .step_up(&p, method, b.code.expose_secret(), &meta)
        .await
        .map_err(ApiError::from);
    if let Err(e) = &result {
        crate::telemetry::count_verification_failure(method.as_str(), e);
    }
    result?;
    Ok(HttpResponse::NoContent().finish())
}

fn device_list(devices: Vec<gatehouse_store::mfa::Device>) -> ListOf<DeviceDto> {
    ListOf {
        items: devices.into_iter().map(DeviceDto::from).collect(),
        next_cursor: None,
    }
}

/// One's remembered devices.
#[utoipa::path(get, path = "/v1/me/devices", tag = "self-service", security(("bearer" = [])),
    responses((status = 200, body = ListOf<DeviceDto>), (status = 401, body = Problem)))]
pub async fn my_devices(st: web::Data<ApiState>, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    let devices = st
        .app
        .mfa()
        .devices_of(p.tenant.id, &UserRef::Id(p.user.id.0))
        .await?;
    Ok(HttpResponse::Ok().json(device_list(devices)))
}

/// Forgets one of one's remembered devices.
#[utoipa::path(delete, path = "/v1/me/devices/{device_id}", tag = "self-service", security(("bearer" = [])),
    params(("device_id" = Uuid, Path)),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
pub async fn revoke_my_device(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let device = uuid_segment(&path)?;
    st.app
        .mfa()
        .revoke_device_of(&p, (p.tenant.id, &UserRef::Id(p.user.id.0)), device, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a user's MFA method and enrollment mode (M3).
#[utoipa::path(put, path = "/v1/tenants/{company}/users/{user_id}/mfa", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username")),
    request_body = AdminMfaRequest,
    responses(
        (status = 200, body = UserDto),
        (status = 403, description = "forbidden, step_up_required", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "method_not_allowed", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn put_user_mfa(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<AdminMfaRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let user = st
        .app
        .mfa()
        .set_user_mfa(
            &t.principal,
            &t.tenant,
            &user_ref(&path)?,
            crate::input::both((b.method, "method"), (b.enrollment, "enrollment"))?,
            &meta,
        )
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &t.tenant)))
}

/// Resets a user's MFA (M9): authenticator, recovery codes and devices go; enrollment
/// is required at the next sign-in.
#[utoipa::path(delete, path = "/v1/tenants/{company}/users/{user_id}/mfa", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username")),
    responses(
        (status = 204),
        (status = 403, description = "forbidden, step_up_required", body = Problem),
        (status = 404, body = Problem),
    ))]
pub async fn reset_user_mfa(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    st.app
        .mfa()
        .reset_user_mfa(&t.principal, &t.tenant, &user_ref(&path)?, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A user's remembered devices (admins; support may read).
#[utoipa::path(get, path = "/v1/tenants/{company}/users/{user_id}/devices", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username")),
    responses((status = 200, body = ListOf<DeviceDto>), (status = 404, body = Problem)))]
pub async fn user_devices(
    st: web::Data<ApiState>,
    t: TenantReader,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let devices = st
        .app
        .mfa()
        .devices_of(t.tenant.id, &user_ref(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(device_list(devices)))
}

/// Revokes one of a user's remembered devices.
#[utoipa::path(delete, path = "/v1/tenants/{company}/users/{user_id}/devices/{device_id}", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path), ("device_id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_user_device(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company, user, device) = path.into_inner();
    let user = user_ref(&(company, user))?;
    let device = uuid_segment(&device)?;
    st.app
        .mfa()
        .revoke_device_of(&t.principal, (t.tenant.id, &user), device, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The practice's trusted networks (tenant-wide and per user).
#[utoipa::path(get, path = "/v1/tenants/{company}/trusted-networks", tag = "trusted-networks", security(("bearer" = [])),
    params(("company" = String, Path)),
    responses((status = 200, body = ListOf<NetworkDto>), (status = 404, body = Problem)))]
pub async fn list_networks(
    st: web::Data<ApiState>,
    t: TenantAdmin,
) -> Result<HttpResponse, ApiError> {
    let networks = st.app.records(t.tenant.id).networks().await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: networks
            .into_iter()
            .map(NetworkDto::from)
            .collect::<Vec<_>>(),
        next_cursor: None,
    }))
}

/// Adds a trusted network: a CIDR range, or the caller's own address (`my_ip`).
#[utoipa::path(post, path = "/v1/tenants/{company}/trusted-networks", tag = "trusted-networks", security(("bearer" = [])),
    params(("company" = String, Path)),
    request_body = NetworkRequest,
    responses((status = 201, body = NetworkDto), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_network(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    body: web::Json<NetworkRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let n = st
        .app
        .mfa()
        .add_trusted_network(
            &t.principal,
            &t.tenant,
            NewNetwork {
                cidr: b.cidr,
                my_ip: b.my_ip,
                description: b.description,
                user_id: b.user_id,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(NetworkDto::from(n)))
}

/// Removes a trusted network.
#[utoipa::path(delete, path = "/v1/tenants/{company}/trusted-networks/{id}", tag = "trusted-networks", security(("bearer" = [])),
    params(("company" = String, Path), ("id" = Uuid, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove_network(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = uuid_segment(&path.1)?;
    st.app
        .mfa()
        .remove_trusted_network(&t.principal, &t.tenant, id, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
