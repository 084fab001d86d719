//! A tenant's audit log.

use crate::dto::{AuditEventDto, AuditVerifyDto, ListOf};
use crate::error::{ApiError, Problem};
use crate::extract::TenantReader;
use crate::params;
use crate::state::ApiState;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use gatehouse_domain::FieldError;
use gatehouse_store::audit::AuditFilter;
use serde::Deserialize;
use uuid::Uuid;

/// `?action=&actor_id=&target_id=&since=&until=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// A dotted action name, e.g. signin.failed
    pub action: Option<String>,
    pub actor_id: Option<String>,
    pub target_id: Option<String>,
    /// RFC 3339, inclusive
    #[param(schema_with = crate::dto::query_instant_schema)]
    pub since: Option<String>,
    /// RFC 3339, exclusive
    #[param(schema_with = crate::dto::query_instant_schema)]
    pub until: Option<String>,
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

fn time(field: &str, v: Option<&str>, errors: &mut Vec<FieldError>) -> Option<DateTime<Utc>> {
    let v = v.map(str::trim).filter(|s| !s.is_empty())?;
    match DateTime::parse_from_rfc3339(v) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            errors.push(FieldError::new(field, "must be an RFC 3339 timestamp"));
            None
        }
    }
}

/// Events newest first.
#[utoipa::path(get, path = "/v1/tenants/{company}/audit-events", tag = "audit", security(("bearer" = [])),
    params(("company" = String, Path), AuditQuery),
    responses((status = 200, body = ListOf<AuditEventDto>), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn list(
    st: web::Data<ApiState>,
    t: TenantReader,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = Vec::new();
    let actor_id = match q
        .actor_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(s) => match Uuid::parse_str(s) {
            Ok(u) => Some(u),
            Err(_) => {
                errors.push(FieldError::new("actor_id", "must be a UUID"));
                None
            }
        },
    };
    let since = time("since", q.since.as_deref(), &mut errors);
    let until = time("until", q.until.as_deref(), &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let mut more = params::Errors::default();
    let filter = AuditFilter {
        action: more.take(params::action(q.action.as_deref())),
        actor_id,
        target_id: more.take(params::text("target_id", q.target_id.as_deref(), 200)),
        since,
        until,
    };
    let cursor = more.take(params::seq_cursor(q.cursor.as_deref()));
    more.finish()?;
    let page = st
        .app
        .records(t.tenant.id)
        .audit(&filter, params::limit(q.limit), cursor.as_deref())
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page.items.into_iter().map(AuditEventDto::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Recomputes the tenant's hash chain.
#[utoipa::path(get, path = "/v1/tenants/{company}/audit-events/verify", tag = "audit", security(("bearer" = [])),
    params(("company" = String, Path)),
    responses((status = 200, body = AuditVerifyDto), (status = 404, body = Problem)))]
pub async fn verify(st: web::Data<ApiState>, t: TenantReader) -> Result<HttpResponse, ApiError> {
    let r = st.app.records(t.tenant.id).verify_audit().await?;
    Ok(HttpResponse::Ok().json(AuditVerifyDto {
        ok: r.ok,
        events: r.events,
        first_bad_seq: r.first_bad_seq,
    }))
}
