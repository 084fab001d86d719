//! Escalations (S2): support asks, the practice decides, support executes once.

use crate::dto::{CreateEscalationRequest, EscalationDto, ExecuteEscalationRequest, ListOf};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, Support, SupportAdmin, TenantAdmin};
use crate::params;
use crate::routes::optional_body;
use crate::state::ApiState;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::escalations::NewEscalation;
use gatehouse_domain::FieldError;
use gatehouse_domain::escalation::EscalationStatus;
use serde::Deserialize;
use uuid::Uuid;

/// `?status=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EscalationQuery {
    #[param(schema_with = crate::dto::query_escalation_status_schema)]
    pub status: Option<String>,
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    /// From the previous page's next_cursor
    pub cursor: Option<String>,
}

/// An escalation id from the path; anything else is simply not found.
fn escalation_id(segment: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(segment).map_err(|_| ApiError::not_found())
}

/// Opens an escalation for a user of a practice (support staff). The practice's admins
/// see it in their list and decide.
#[utoipa::path(post, path = "/v1/escalations", tag = "escalations", security(("bearer" = [])),
    request_body = CreateEscalationRequest,
    responses((status = 201, body = EscalationDto), (status = 403, body = Problem),
        (status = 409, description = "conflict: an open escalation for this user and action exists", body = Problem),
        (status = 422, body = Problem)))]
pub async fn create(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Support(p): Support,
    body: web::Json<CreateEscalationRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let e = st
        .app
        .escalations()
        .open(
            &p,
            NewEscalation {
                company: b.company,
                user_id: b.user_id,
                action: b.action.given("action"),
                reason: b.reason,
                ticket: b.ticket,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created().json(EscalationDto::from(&e)))
}

/// One escalation (support staff).
#[utoipa::path(get, path = "/v1/escalations/{id}", tag = "escalations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EscalationDto), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    st: web::Data<ApiState>,
    _who: Support,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let e = st.app.escalations().get(escalation_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(EscalationDto::from(&e)))
}

/// Approves under the two-person rule (support admin who did not ask), only when the
/// practice has no other active, unlocked admin who could decide.
#[utoipa::path(post, path = "/v1/escalations/{id}/approve", tag = "escalations", security(("bearer" = [])),
    params(("id" = Uuid, Path)),
    responses((status = 200, body = EscalationDto),
        (status = 403, description = "forbidden: not a support admin, or the requester", body = Problem),
        (status = 404, body = Problem),
        (status = 409, description = "conflict: not pending, or the practice has an admin who can decide", body = Problem)))]
pub async fn support_approve(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let e = st
        .app
        .escalations()
        .support_approves(&p, escalation_id(&path)?, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(EscalationDto::from(&e)))
}

/// Executes an approved escalation, once, within an hour of its approval.
#[utoipa::path(post, path = "/v1/escalations/{id}/execute", tag = "escalations", security(("bearer" = [])),
    params(("id" = Uuid, Path)), request_body(content = Option<ExecuteEscalationRequest>, description = "May be omitted"),
    responses((status = 200, body = EscalationDto), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "escalation_not_approved: pending, denied, executed or expired", body = Problem),
        (status = 422, description = "validation_failed or password_policy", body = Problem)))]
pub async fn execute(
    st: web::Data<ApiState>,
    req: HttpRequest,
    Meta(meta): Meta,
    Support(p): Support,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let id = escalation_id(&path)?;
    let b: ExecuteEscalationRequest = optional_body(&req, &body)?;
    let e = st
        .app
        .escalations()
        .execute(&p, id, b.temporary_password, &meta)
        .await?;
    Ok(HttpResponse::Ok().json(EscalationDto::from(&e)))
}

/// The practice's escalations, newest first (its admins; support reads one by id).
#[utoipa::path(get, path = "/v1/tenants/{company}/escalations", tag = "escalations", security(("bearer" = [])),
    params(("company" = String, Path), EscalationQuery),
    responses((status = 200, body = ListOf<EscalationDto>), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn tenant_list(
    st: web::Data<ApiState>,
    t: TenantAdmin,
    q: web::Query<EscalationQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let status = match q.status.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => EscalationStatus::parse(s).or_else(|| {
            errors.push(FieldError::new(
                "status",
                "one of pending, approved, denied, executed, expired",
            ));
            None
        }),
    };
    let cursor = params::id_cursor(q.cursor.as_deref().map(str::trim)).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let page = st
        .app
        .escalations()
        .of_practice(&t.tenant, status, params::limit(q.limit), cursor)
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page.items.iter().map(EscalationDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

async fn decide(
    st: web::Data<ApiState>,
    meta: gatehouse_app::RequestMeta,
    t: TenantAdmin,
    path: &(String, String),
    approve: bool,
) -> Result<HttpResponse, ApiError> {
    let e = st
        .app
        .escalations()
        .practice_decides(
            &t.principal,
            &t.tenant,
            escalation_id(&path.1)?,
            approve,
            &meta,
        )
        .await?;
    Ok(HttpResponse::Ok().json(EscalationDto::from(&e)))
}

/// Approves a pending escalation (a practice admin other than its subject; step-up).
/// Support then has one hour to execute it.
#[utoipa::path(post, path = "/v1/tenants/{company}/escalations/{id}/approve", tag = "escalations",
    security(("bearer" = [])), params(("company" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = EscalationDto),
        (status = 403, description = "forbidden or step_up_required", body = Problem),
        (status = 404, body = Problem), (status = 409, description = "conflict: not pending", body = Problem)))]
pub async fn approve(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    decide(st, meta, t, &path, true).await
}

/// Denies a pending escalation.
#[utoipa::path(post, path = "/v1/tenants/{company}/escalations/{id}/deny", tag = "escalations",
    security(("bearer" = [])), params(("company" = String, Path), ("id" = Uuid, Path)),
    responses((status = 200, body = EscalationDto), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 409, description = "conflict: not pending", body = Problem)))]
pub async fn deny(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    t: TenantAdmin,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    decide(st, meta, t, &path, false).await
}
