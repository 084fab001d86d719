//! The second-factor steps of a sign-in flow.

use crate::dto::{
    ChannelRequest, CodeRequest, CodeSentDto, EnrollChannelRequest, Flow, TotpEnrollmentDto,
    TotpStartRequest, VerifyRequest,
};
use crate::error::{ApiError, Problem};
use crate::extract::Meta;
use crate::routes::auth::{flow_dto, flow_id};
use crate::routes::optional_body;
use crate::state::ApiState;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::signin::VerifyInput;
use gatehouse_domain::mfa::codes::Channel;
use secrecy::ExposeSecret;

/// `email` or `sms` in a path; anything else is not a resource.
fn path_channel(raw: &str) -> Result<Channel, ApiError> {
    Channel::parse(raw).ok_or_else(ApiError::not_found)
}

/// Sends (or resends) a sign-in code.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/code", tag = "sign-in",
    request_body = ChannelRequest,
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 202, description = "The code is queued for delivery", body = CodeSentDto),
        (status = 404, body = Problem),
        (status = 409, description = "method_not_allowed, no_destination, destination_unverified, phone_opted_out, email_suppressed, conflict (wrong step)", body = Problem),
        (status = 410, description = "flow_expired", body = Problem),
        (status = 429, description = "rate_limited, with Retry-After", body = Problem),
    ))]
pub async fn send_code(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<String>,
    body: web::Json<ChannelRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let sent = st
        .app
        .signin()
        .send_code(id, body.into_inner().channel.value("channel")?, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(CodeSentDto::from(sent)))
}

/// Proves the second factor: a code sent by email or SMS, an authenticator code or a
/// recovery code; optionally remembers this device.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/verify", tag = "sign-in",
    request_body = VerifyRequest,
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, description = "The flow's next step", body = Flow),
        (status = 400, description = "mfa_code_invalid, with attempts_remaining", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "method_not_allowed, conflict", body = Problem),
        (status = 410, description = "mfa_code_expired, flow_expired", body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn verify(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<String>,
    body: web::Json<VerifyRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let b = body.into_inner();
    let method = b.method.value("method")?;
    let result = st
        .app
        .signin()
        .verify(
            id,
            VerifyInput {
                method,
                code: b.code,
                remember_device: b.remember_device,
            },
            &meta,
        )
        .await
        .map_err(ApiError::from);
    if let Err(e) = &result {
        crate::telemetry::count_verification_failure(method.as_str(), e);
    }
    Ok(HttpResponse::Ok().json(flow_dto(result?)))
}

/// Starts enrolling an authenticator app: the secret, its otpauth URI and a QR code.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/enroll/totp", tag = "sign-in",
    request_body(content = Option<TotpStartRequest>, description = "May be omitted"),
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, body = TotpEnrollmentDto),
        (status = 404, body = Problem),
        (status = 409, description = "method_not_allowed, conflict", body = Problem),
        (status = 410, description = "flow_expired", body = Problem),
        (status = 422, body = Problem),
    ))]
pub async fn enroll_totp(
    st: web::Data<ApiState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let b: TotpStartRequest = optional_body(&req, &body)?;
    let e = st.app.signin().enroll_totp(id, b.label).await?;
    Ok(HttpResponse::Ok().json(TotpEnrollmentDto::from(e)))
}

/// Completes authenticator enrollment with a code from the app; the Flow carries the
/// recovery codes, shown this once.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/enroll/totp/confirm", tag = "sign-in",
    request_body = CodeRequest,
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, body = Flow),
        (status = 400, description = "mfa_code_invalid", body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem),
        (status = 410, body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn confirm_totp(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<String>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let flow = st
        .app
        .signin()
        .confirm_totp(id, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(flow_dto(flow)))
}

/// Starts enrolling email or SMS codes: a code goes to the address being enrolled.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/enroll/{channel}", tag = "sign-in",
    request_body(content = Option<EnrollChannelRequest>, description = "May be omitted: the user's own address"),
    params(("flow_id" = Uuid, Path, description = "The flow"), ("channel" = inline(crate::vocabulary::Channel), Path)),
    responses(
        (status = 202, body = CodeSentDto),
        (status = 404, body = Problem),
        (status = 409, description = "method_not_allowed, no_destination, conflict", body = Problem),
        (status = 410, body = Problem),
        (status = 422, body = Problem),
        (status = 429, description = "rate_limited", body = Problem),
    ))]
pub async fn enroll_channel(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path.0)?;
    let channel = path_channel(&path.1)?;
    let b: EnrollChannelRequest = optional_body(&req, &body)?;
    let sent = st
        .app
        .signin()
        .enroll_channel(id, channel, b.destination, &meta)
        .await?;
    Ok(HttpResponse::Accepted().json(CodeSentDto::from(sent)))
}

/// Completes email or SMS enrollment: the code proves the address, which becomes the
/// user's verified contact and method.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/enroll/{channel}/confirm", tag = "sign-in",
    request_body = CodeRequest,
    params(("flow_id" = Uuid, Path, description = "The flow"), ("channel" = inline(crate::vocabulary::Channel), Path)),
    responses(
        (status = 200, body = Flow),
        (status = 400, description = "mfa_code_invalid", body = Problem),
        (status = 404, body = Problem),
        (status = 409, body = Problem),
        (status = 410, description = "mfa_code_expired, flow_expired", body = Problem),
        (status = 429, description = "mfa_code_exhausted", body = Problem),
    ))]
pub async fn confirm_channel(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<(String, String)>,
    body: web::Json<CodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path.0)?;
    let channel = path_channel(&path.1)?;
    let flow = st
        .app
        .signin()
        .confirm_channel(id, channel, body.code.expose_secret(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(flow_dto(flow)))
}

/// Declines a suggested enrollment (only at `mfa_enrollment_suggested`).
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/skip", tag = "sign-in",
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, body = Flow),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: the flow is not at a suggested enrollment", body = Problem),
        (status = 410, body = Problem),
    ))]
pub async fn skip(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let flow = st.app.signin().skip(id, &meta).await?;
    Ok(HttpResponse::Ok().json(flow_dto(flow)))
}
