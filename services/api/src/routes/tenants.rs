//! Tenants: the vendor's provisioning and a practice's settings.

use crate::dto::{
    CreateTenantRequest, ListOf, PageQuery, ProvisionedTenant, SettingsPatchDto, TenantDto, UserDto,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, Support, SupportAdmin, TenantAdmin, TenantReader};
use crate::params;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_app::admin::NewTenant;
use gatehouse_app::admin::NewUser;
use gatehouse_store::TenantStatus;

/// All tenants (support staff).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = ListOf<TenantDto>), (status = 403, body = Problem)))]
pub async fn list(
    st: web::Data<ApiState>,
    _who: Support,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let cursor =
        params::company_cursor(q.cursor.as_deref()).map_err(|e| ApiError::validation(vec![e]))?;
    let page = st
        .app
        .deployment()
        .tenants(params::limit(q.limit), cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page.items.iter().map(TenantDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Provisions a practice with its first practice admin (support_admin).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", security(("bearer" = [])),
    request_body = CreateTenantRequest,
    responses((status = 201, body = ProvisionedTenant), (status = 403, body = Problem),
        (status = 409, description = "conflict: company id taken", body = Problem), (status = 422, body = Problem)))]
pub async fn create(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    body: web::Json<CreateTenantRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let (tenant, admin) = st
        .app
        .admin()
        .provision_tenant(
            &p,
            NewTenant {
                company: b.company,
                name: b.name,
                timezone: b.timezone,
                admin: NewUser {
                    username: b.admin.username,
                    first_name: b.admin.first_name,
                    last_name: b.admin.last_name,
                    email: Some(b.admin.email),
                    phone: b.admin.phone,
                    role: Ok(gatehouse_domain::role::Role::PracticeAdmin),
                    password: b.admin.password,
                    groups: Vec::new(),
                },
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(ProvisionedTenant {
        admin: UserDto::from_user(&admin, &tenant),
        tenant: TenantDto::from(&tenant),
    }))
}

/// One tenant (its practice admins, or support staff).
#[utoipa::path(get, path = "/v1/tenants/{company}", tag = "tenants", security(("bearer" = [])),
    params(("company" = String, Path)),
    responses((status = 200, body = TenantDto), (status = 404, body = Problem)))]
pub async fn get(t: TenantReader) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(TenantDto::from(&t.tenant)))
}

/// Changes any subset of the tenant's settings; every problem is reported at once.
#[utoipa::path(patch, path = "/v1/tenants/{company}/settings", tag = "tenants", security(("bearer" = [])),
    params(("company" = String, Path)), request_body = SettingsPatchDto,
    responses((status = 200, body = TenantDto), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_settings(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    body: web::Json<SettingsPatchDto>,
) -> Result<HttpResponse, ApiError> {
    let tenant = st
        .app
        .admin()
        .update_settings(&t.principal, &t.tenant, body.into_inner().into(), &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TenantDto::from(&tenant)))
}

/// The company id of `/v1/tenants/{company}/...`; a malformed one is no tenant (404).
fn company_of(path: &str) -> Result<gatehouse_domain::ids::CompanyId, ApiError> {
    gatehouse_domain::ids::CompanyId::parse(path).map_err(|_| ApiError::not_found())
}

/// Suspends a practice (support_admin, S3): its users cannot sign in and every session
/// of it ends at once. The operator tenant cannot be suspended (409).
#[utoipa::path(post, path = "/v1/tenants/{company}/suspend", tag = "tenants", security(("bearer" = [])),
    params(("company" = String, Path)),
    responses((status = 200, body = TenantDto), (status = 401, body = Problem),
        (status = 403, description = "forbidden: not a support admin", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: already suspended, or the operator tenant", body = Problem)))]
pub async fn suspend(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = st
        .app
        .admin()
        .set_tenant_status(&p, &company_of(&path)?, TenantStatus::Suspended, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TenantDto::from(&tenant)))
}

/// Reactivates a suspended practice (support_admin, S3): its users may sign in again.
#[utoipa::path(post, path = "/v1/tenants/{company}/reactivate", tag = "tenants", security(("bearer" = [])),
    params(("company" = String, Path)),
    responses((status = 200, body = TenantDto), (status = 401, body = Problem),
        (status = 403, description = "forbidden: not a support admin", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: not suspended, or the operator tenant", body = Problem)))]
pub async fn reactivate(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = st
        .app
        .admin()
        .set_tenant_status(&p, &company_of(&path)?, TenantStatus::Active, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(TenantDto::from(&tenant)))
}
