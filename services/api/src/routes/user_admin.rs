//! A practice admin's actions on one user: edit, deactivate and reactivate, unlock,
//! temporary password, copy.

use crate::dto::{CopyUserRequest, ResetPasswordRequest, UpdateUserRequest, UserDto};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, TenantAdmin};
use crate::routes::users::user_ref;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_app::admin::{UserCopy, UserPatch};

/// Changes any of names, email, phone, role and active. A new email or phone must be
/// verified again; a role change needs step-up; `active: false` ends the user's sessions
/// and remembered devices at once. An operator account given `support_admin` becomes
/// inactive with `pending_approval` until a second support admin approves it (S4).
#[utoipa::path(patch, path = "/v1/tenants/{company}/users/{user_id}", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username")),
    request_body = UpdateUserRequest,
    responses((status = 200, body = UserDto), (status = 403, description = "forbidden or step_up_required", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: your own role or active flag, or activating an account waiting for approval", body = Problem),
        (status = 422, body = Problem)))]
pub async fn patch(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<UpdateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let user = st
        .app
        .admin()
        .update_user(
            &t.principal,
            &t.tenant,
            &user_ref(&path)?,
            UserPatch {
                first_name: b.first_name,
                last_name: b.last_name,
                email: b.email,
                phone: b.phone,
                role: b.role.map(|r| r.given("role")),
                active: b.active,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &t.tenant)))
}

/// Lifts a login lock and clears the failed sign-in count (step-up).
#[utoipa::path(post, path = "/v1/tenants/{company}/users/{user_id}/unlock", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = UserDto), (status = 403, description = "forbidden or step_up_required", body = Problem),
        (status = 404, body = Problem)))]
pub async fn unlock(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let user = st
        .app
        .admin()
        .unlock_user(&t.principal, &t.tenant, &user_ref(&path)?, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &t.tenant)))
}

/// Sets a temporary password (step-up): the user must change it at the next sign-in;
/// their sessions and remembered devices end.
#[utoipa::path(post, path = "/v1/tenants/{company}/users/{user_id}/password", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path)),
    request_body = ResetPasswordRequest,
    responses((status = 204), (status = 403, description = "forbidden or step_up_required", body = Problem),
        (status = 404, body = Problem), (status = 422, description = "validation_failed or password_policy", body = Problem)))]
pub async fn reset_password(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<ResetPasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    st.app
        .admin()
        .reset_password(
            &t.principal,
            &t.tenant,
            &user_ref(&path)?,
            body.into_inner().temporary_password,
            &meta,
        )
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Operator accounts (S4): activates an account waiting for approval. Only a support admin
/// other than the one who created or promoted it, after step-up.
#[utoipa::path(post, path = "/v1/tenants/{company}/users/{user_id}/approve", tag = "support",
    security(("bearer" = [])),
    params(("company" = String, Path, description = "the operator tenant"), ("user_id" = String, Path, description = "UUID or username")),
    responses((status = 200, body = UserDto),
        (status = 401, description = "unauthenticated", body = Problem),
        (status = 403, description = "forbidden (the one who created or promoted it) or step_up_required", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: the account is not waiting for approval", body = Problem)))]
pub async fn approve(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let user = st
        .app
        .admin()
        .approve_user(&t.principal, &t.tenant, &user_ref(&path)?, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &t.tenant)))
}

/// Creates a user from an existing one (T4): role, groups, MFA method and enrollment,
/// login hours and per-user trusted networks are copied; no credentials. Copying an admin
/// or support role needs step-up; an operator-tenant copy waits for approval (S4).
#[utoipa::path(post, path = "/v1/tenants/{company}/users/{user_id}/copy", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path, description = "the user copied")),
    request_body = CopyUserRequest,
    responses((status = 201, body = UserDto),
        (status = 403, description = "forbidden or step_up_required (admin or support role)", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: username taken", body = Problem),
        (status = 422, description = "validation_failed or password_policy", body = Problem)))]
pub async fn copy(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<CopyUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let user = st
        .app
        .admin()
        .copy_user(
            &t.principal,
            &t.tenant,
            &user_ref(&path)?,
            UserCopy {
                username: b.username,
                first_name: b.first_name,
                last_name: b.last_name,
                email: b.email,
                phone: b.phone,
                password: b.password,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(UserDto::from_user(&user, &t.tenant)))
}
