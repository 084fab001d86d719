//! Self-service on one's own account.

use crate::dto::{ChangePasswordRequest, UserDto};
use crate::error::{ApiError, Problem};
use crate::extract::{Auth, Meta};
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_store::scope::UserRef;

/// The signed-in user.
#[utoipa::path(get, path = "/v1/me", tag = "self-service", security(("bearer" = [])),
    responses((status = 200, body = UserDto), (status = 401, body = Problem)))]
pub async fn me(st: web::Data<ApiState>, Auth(p): Auth) -> Result<HttpResponse, ApiError> {
    // Fresh from the database: the session cache may be up to a minute behind.
    let user = st
        .app
        .records(p.tenant.id)
        .user(&UserRef::Id(p.user.id.0))
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &p.tenant)))
}

/// Changes one's own password; other sessions of the user end.
#[utoipa::path(post, path = "/v1/me/password", tag = "self-service", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 204),
        (status = 401, body = Problem),
        (status = 422, body = Problem),
        (status = 423, description = "account_locked: wrong current passwords reached the practice's threshold", body = Problem),
        (status = 429, description = "rate_limited, with Retry-After: wrong current passwords are limited per client address like sign-ins", body = Problem),
    ))]
pub async fn change_password(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Auth(p): Auth,
    body: web::Json<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    st.app
        .account()
        .change_password(&p, b.current_password, b.new_password, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
