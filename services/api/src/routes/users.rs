//! A practice's users.

use crate::dto::{
    CountDto, CreateUserRequest, DeliveryDto, ListOf, LoginHoursDto, LoginWindowDto, PageQuery,
    UserDto,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, TenantAdmin, TenantReader};
use crate::params;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use gatehouse_app::admin::NewUser;
use gatehouse_domain::login_hours::LoginWindow;
use gatehouse_store::scope::UserRef;
use gatehouse_store::users::UserFilter;
use serde::Deserialize;

/// `?active=&locked=&q=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserListQuery {
    #[param(schema_with = crate::dto::query_flag_schema)]
    pub active: Option<String>,
    #[param(schema_with = crate::dto::query_flag_schema)]
    pub locked: Option<String>,
    /// Text search over username, names, email and phone
    pub q: Option<String>,
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    /// From the previous page's next_cursor
    pub cursor: Option<String>,
}

pub(crate) fn user_ref(path: &(String, String)) -> Result<UserRef, ApiError> {
    UserRef::parse(&path.1).ok_or_else(ApiError::not_found)
}

/// Users of the practice, ordered by username.
#[utoipa::path(get, path = "/v1/tenants/{company}/users", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), UserListQuery),
    responses((status = 200, body = ListOf<UserDto>), (status = 404, body = Problem)))]
pub async fn list(
    st: web::Data<ApiState>,
    t: TenantReader,
    q: web::Query<UserListQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = params::Errors::default();
    let filter = UserFilter {
        active: errors.take(params::flag("active", q.active.as_deref())),
        locked: errors.take(params::flag("locked", q.locked.as_deref())),
        q: errors.take(params::text("q", q.q.as_deref(), 100)),
        group: None,
    };
    let cursor = errors.take(params::user_cursor(q.cursor.as_deref()));
    errors.finish()?;
    let page = st
        .app
        .records(t.tenant.id)
        .users(&filter, params::limit(q.limit), cursor.as_deref())
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

/// Marks every active user of the practice, the caller included, to change their
/// password at the next sign-in (P3: a practice moving onto Gatehouse). Answers how many
/// were newly marked.
#[utoipa::path(post, path = "/v1/tenants/{company}/users/require-password-change", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path)),
    responses((status = 200, body = CountDto), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn require_password_change(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
) -> Result<HttpResponse, ApiError> {
    let count = st
        .app
        .admin()
        .require_password_change_all(&t.principal, &t.tenant, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(CountDto { count }))
}

/// Creates a user with a temporary password. An admin or support role needs step-up; an
/// operator-tenant account is created inactive with `pending_approval` (S4).
#[utoipa::path(post, path = "/v1/tenants/{company}/users", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path)), request_body = CreateUserRequest,
    responses((status = 201, body = UserDto),
        (status = 403, description = "forbidden or step_up_required (admin or support role)", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: username taken", body = Problem),
        (status = 422, description = "validation_failed or password_policy", body = Problem)))]
pub async fn create(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    body: web::Json<CreateUserRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let user = st
        .app
        .admin()
        .create_user(
            &t.principal,
            &t.tenant,
            NewUser {
                username: b.username,
                first_name: b.first_name,
                last_name: b.last_name,
                email: b.email,
                phone: b.phone,
                role: b.role.given("role"),
                password: b.password,
                groups: b.groups,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(UserDto::from_user(&user, &t.tenant)))
}

/// One user, by UUID or username.
#[utoipa::path(get, path = "/v1/tenants/{company}/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username")),
    responses((status = 200, body = UserDto), (status = 404, body = Problem)))]
pub async fn get(
    st: web::Data<ApiState>,
    t: TenantReader,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let user = st.app.records(t.tenant.id).user(&user_ref(&path)?).await?;
    Ok(HttpResponse::Ok().json(UserDto::from_user(&user, &t.tenant)))
}

fn hours_dto(tz: &str, windows: Vec<LoginWindow>) -> LoginHoursDto {
    LoginHoursDto {
        timezone: tz.to_owned(),
        items: windows.into_iter().map(LoginWindowDto::from).collect(),
    }
}

/// A user's login hours in the tenant's time zone.
#[utoipa::path(get, path = "/v1/tenants/{company}/users/{user_id}/login-hours", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = LoginHoursDto), (status = 404, body = Problem)))]
pub async fn get_login_hours(
    st: web::Data<ApiState>,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let windows = st
        .app
        .records(t.tenant.id)
        .login_hours(&user_ref(&path)?)
        .await?;
    Ok(HttpResponse::Ok().json(hours_dto(t.tenant.timezone.name(), windows)))
}

/// Replaces a user's login hours; an empty list lifts the restriction.
#[utoipa::path(put, path = "/v1/tenants/{company}/users/{user_id}/login-hours", tag = "users",
    security(("bearer" = [])), params(("company" = String, Path), ("user_id" = String, Path)),
    request_body = Vec<LoginWindowDto>,
    responses((status = 200, body = LoginHoursDto), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn put_login_hours(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
    body: web::Json<Vec<LoginWindowDto>>,
) -> Result<HttpResponse, ApiError> {
    let user = user_ref(&path)?;
    let mut texts = Vec::new();
    let mut errors = Vec::new();
    for (i, w) in body.iter().enumerate() {
        match w.to_text(i) {
            Ok(t) => texts.push(t),
            Err(e) => {
                errors.push(e);
                // Still check this entry's times, so every problem is reported at once.
                texts.push(gatehouse_domain::login_hours::LoginWindowText {
                    weekday: gatehouse_domain::login_hours::Weekday::Monday,
                    start: w.start.clone(),
                    end: w.end.clone(),
                });
            }
        }
    }
    let windows = match (LoginWindow::parse_all(&texts), errors.is_empty()) {
        (Ok(w), true) => w,
        (Ok(_), false) => return Err(ApiError::validation(errors)),
        (Err(gatehouse_domain::Error::Validation(more)), _) => {
            errors.extend(more);
            return Err(ApiError::validation(errors));
        }
        (Err(e), _) => return Err(e.into()),
    };
    let saved = st
        .app
        .admin()
        .set_login_hours(&t.principal, &t.tenant, &user, windows, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(hours_dto(t.tenant.timezone.name(), saved)))
}

/// A user's deliveries (D5), newest first, each destination masked: what support and the
/// practice read to answer "why didn't my code arrive?".
#[utoipa::path(get, path = "/v1/tenants/{company}/users/{user_id}/deliveries", tag = "users",
    security(("bearer" = [])),
    params(("company" = String, Path), ("user_id" = String, Path, description = "UUID or username"), PageQuery),
    responses((status = 200, body = ListOf<DeliveryDto>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, description = "validation_failed: cursor", body = Problem)))]
pub async fn deliveries(
    st: web::Data<ApiState>,
    t: TenantReader,
    path: web::Path<(String, String)>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let user = user_ref(&path)?;
    let cursor =
        params::id_cursor(q.cursor.as_deref()).map_err(|e| ApiError::validation(vec![e]))?;
    let page = st
        .app
        .records(t.tenant.id)
        .deliveries_of(&user, params::limit(q.limit), cursor)
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page.items.into_iter().map(DeliveryDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
