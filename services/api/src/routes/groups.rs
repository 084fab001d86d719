//! A practice's groups and their members (T5).

use crate::dto::{AddMembersRequest, AddedDto, GroupDto, GroupRequest, ListOf, PageQuery, UserDto};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, TenantAdmin};
use crate::params;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_app::admin::NewMembers;
use gatehouse_domain::ids::GroupId;
use gatehouse_domain::names::GroupName;
use gatehouse_store::scope::UserRef;
use uuid::Uuid;

/// The group of a path: a malformed id names no group, like an unknown one.
fn group_id(segment: &str) -> Result<GroupId, ApiError> {
    Uuid::parse_str(segment)
        .map(GroupId)
        .map_err(|_| ApiError::not_found())
}

/// Groups of the practice, ordered by name regardless of case, with member counts.
#[utoipa::path(get, path = "/v1/tenants/{company}/groups", operation_id = "list_groups", tag = "groups", security(("bearer" = [])),
    params(("company" = String, Path), PageQuery),
    responses((status = 200, body = ListOf<GroupDto>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    st: web::Data<ApiState>,
    t: TenantAdmin,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let cursor =
        params::group_cursor(q.cursor.as_deref()).map_err(|e| ApiError::validation(vec![e]))?;
    let page = st
        .app
        .records(t.tenant.id)
        .groups(params::limit(q.limit), cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page.items.into_iter().map(GroupDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Creates a group.
#[utoipa::path(post, path = "/v1/tenants/{company}/groups", operation_id = "create_group", tag = "groups", security(("bearer" = [])),
    params(("company" = String, Path)), request_body = GroupRequest,
    responses((status = 201, body = GroupDto), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "conflict: the name is taken (in any case)", body = Problem),
        (status = 422, description = "validation_failed", body = Problem)))]
pub async fn create(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    body: web::Json<GroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = GroupName::parse(&body.name)?;
    let group = st
        .app
        .admin()
        .create_group(&t.principal, &t.tenant, name, &meta)
        .await?;
    Ok(HttpResponse::Created().json(GroupDto::from(group)))
}

/// Renames a group.
#[utoipa::path(patch, path = "/v1/tenants/{company}/groups/{group_id}", operation_id = "rename_group", tag = "groups",
    security(("bearer" = [])), params(("company" = String, Path), ("group_id" = Uuid, Path)),
    request_body = GroupRequest,
    responses((status = 200, body = GroupDto), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "conflict: the name is taken (in any case)", body = Problem),
        (status = 422, description = "validation_failed", body = Problem)))]
pub async fn rename(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<GroupRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    let name = GroupName::parse(&body.name)?;
    let group = st
        .app
        .admin()
        .rename_group(&t.principal, &t.tenant, id, name, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(GroupDto::from(group)))
}

/// Deletes a group; its users stay, without it.
#[utoipa::path(delete, path = "/v1/tenants/{company}/groups/{group_id}", operation_id = "delete_group", tag = "groups",
    security(("bearer" = [])), params(("company" = String, Path), ("group_id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    st.app
        .admin()
        .delete_group(&t.principal, &t.tenant, id, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Users of a group, ordered by username, as the user list shows them.
#[utoipa::path(get, path = "/v1/tenants/{company}/groups/{group_id}/members", operation_id = "list_group_members", tag = "groups",
    security(("bearer" = [])), params(("company" = String, Path), ("group_id" = Uuid, Path), PageQuery),
    responses((status = 200, body = ListOf<UserDto>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn members(
    st: web::Data<ApiState>,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    let cursor =
        params::user_cursor(q.cursor.as_deref()).map_err(|e| ApiError::validation(vec![e]))?;
    let page = st
        .app
        .records(t.tenant.id)
        .group_members(id, params::limit(q.limit), cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page
            .items
            .iter()
            .map(|u| UserDto::from_user(u, &t.tenant))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Adds many users at once: `{"all": true}` adds every active user of the practice,
/// `{"user_ids": [...]}` the users named (all of this practice, or nothing is added).
/// Answers how many became members; those who already were are not counted.
#[utoipa::path(post, path = "/v1/tenants/{company}/groups/{group_id}/members", operation_id = "add_group_members", tag = "groups",
    security(("bearer" = [])), params(("company" = String, Path), ("group_id" = Uuid, Path)),
    request_body = AddMembersRequest,
    responses((status = 200, body = AddedDto), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 422, description = "validation_failed: both forms or neither, or a user id of no user of this practice", body = Problem)))]
pub async fn add_members(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<AddMembersRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    let b = body.into_inner();
    let who = NewMembers::parse(b.all, b.user_ids)?;
    let added = st
        .app
        .admin()
        .add_group_members(&t.principal, &t.tenant, id, who, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(AddedDto { added }))
}

/// Adds a user (UUID or username) to a group. Idempotent: a member already answers 204
/// too, and nothing is recorded.
#[utoipa::path(put, path = "/v1/tenants/{company}/groups/{group_id}/members/{user_id}", operation_id = "add_group_member", tag = "groups",
    security(("bearer" = [])),
    params(("company" = String, Path), ("group_id" = Uuid, Path), ("user_id" = String, Path, description = "UUID or username")),
    responses((status = 204, description = "the user is a member"), (status = 403, body = Problem),
        (status = 404, description = "no such group or user in this practice", body = Problem)))]
pub async fn add_member(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    let user = UserRef::parse(&path.2).ok_or_else(ApiError::not_found)?;
    st.app
        .admin()
        .add_group_member(&t.principal, &t.tenant, id, &user, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes a user (UUID or username) from a group. Idempotent: a user of the practice who
/// is not a member answers 204 too; an unknown user or group answers 404.
#[utoipa::path(delete, path = "/v1/tenants/{company}/groups/{group_id}/members/{user_id}", operation_id = "remove_group_member", tag = "groups",
    security(("bearer" = [])),
    params(("company" = String, Path), ("group_id" = Uuid, Path), ("user_id" = String, Path, description = "UUID or username")),
    responses((status = 204, description = "the user is not a member"), (status = 403, body = Problem),
        (status = 404, description = "no such group or user in this practice", body = Problem)))]
pub async fn remove_member(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let id = group_id(&path.1)?;
    let user = UserRef::parse(&path.2).ok_or_else(ApiError::not_found)?;
    st.app
        .admin()
        .remove_group_member(&t.principal, &t.tenant, id, &user, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
