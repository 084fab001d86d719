//! The sign-in flow and sessions.

use crate::dto::{
    Flow, FlowMfaDto, FlowPasswordRequest, LoginRequest, SessionInfo, SessionToken, TenantRef,
    UserDto,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, Meta};
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_app::signin::{FlowView, LoginInput};
use gatehouse_domain::ids::FlowId;
use secrecy::ExposeSecret;
use uuid::Uuid;

pub(crate) fn flow_dto(f: FlowView) -> Flow {
    Flow {
        flow_id: f.flow_id.0,
        status: f.status.as_str().to_owned(),
        expires_at: f.expires_at,
        mfa: f.mfa.map(|m| FlowMfaDto {
            methods: m.methods.iter().map(|f| f.as_str().to_owned()).collect(),
            preferred: m.preferred.map(|f| f.as_str().to_owned()),
            code_sent: m.code_sent.map(Into::into),
            code_error: m.code_error.map(|e| ApiError::from(e).problem()),
        }),
        session: f.session.map(|s| SessionToken {
            token: s.token.expose_secret().to_owned(),
            expires_at: s.expires_at,
        }),
        device_token: f.device_token.map(|t| t.expose_secret().to_owned()),
        recovery_codes: f.recovery_codes,
    }
}

/// Starts a sign-in with company, user ID and password.
#[utoipa::path(post, path = "/v1/auth/login", tag = "sign-in", request_body = LoginRequest,
    responses(
        (status = 200, description = "The flow's next step", body = Flow),
        (status = 401, description = "invalid_credentials (same body for unknown company, unknown user, wrong password)", body = Problem),
        (status = 403, description = "account_inactive, outside_login_hours, tenant_suspended", body = Problem),
        (status = 423, description = "account_locked", body = Problem),
        (status = 429, description = "rate_limited", body = Problem),
    ))]
pub async fn login(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    body: web::Json<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let result = async {
        let flow = st
            .app
            .signin()
            .login(
                LoginInput {
                    company: b.company,
                    username: b.username,
                    password: b.password,
                    device_token: b.device_token,
                    require_second_factor: false,
                },
                &meta,
            )
            .await?;
        Ok::<_, ApiError>(flow)
    }
    .await;
    crate::telemetry::count_signin(&result, |f| f.status.as_str());
    Ok(HttpResponse::Ok().json(flow_dto(result?)))
}

pub(crate) fn flow_id(raw: &str) -> Result<FlowId, ApiError> {
    Uuid::parse_str(raw)
        .map(FlowId)
        .map_err(|_| ApiError::not_found())
}

/// Replaces a temporary password inside the flow.
#[utoipa::path(post, path = "/v1/auth/flows/{flow_id}/password", tag = "sign-in",
    request_body = FlowPasswordRequest,
    params(("flow_id" = Uuid, Path, description = "The flow")),
    responses(
        (status = 200, body = Flow),
        (status = 404, body = Problem),
        (status = 410, description = "flow_expired", body = Problem),
        (status = 422, description = "password_policy: every broken rule", body = Problem),
    ))]
pub async fn flow_password(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    path: web::Path<String>,
    body: web::Json<FlowPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = flow_id(&path)?;
    let flow = st
        .app
        .signin()
        .change_password(id, body.into_inner().new_password, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(flow_dto(flow)))
}

/// Checks a session: the hot path EHR applications call on every page.
#[utoipa::path(get, path = "/v1/auth/session", tag = "sessions", security(("bearer" = [])),
    responses((status = 200, body = SessionInfo), (status = 401, body = Problem)))]
pub async fn session(st: web::Data<ApiState>, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    let policy = st.app.deployment().session_policy();
    Ok(HttpResponse::Ok().json(SessionInfo {
        user: UserDto::from_user(&p.user, &p.tenant),
        tenant: TenantRef {
            company: p.tenant.company.to_string(),
            name: p.tenant.name.clone(),
        },
        expires_at: p.expires_at,
        idle_expires_at: policy.effective_expiry(p.expires_at, p.last_seen_at()),
        mfa_verified_at: p.mfa_verified_at,
    }))
}

/// Ends the session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "sessions", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
) -> Result<HttpResponse, ApiError> {
    st.app.signin().logout(&p, &meta).await?;
    Ok(HttpResponse::NoContent().finish())
}
