//! The vendor's support desk (S1, D3, D4): finding users and deliveries across
//! practices, a number's opt-out state, lifting an email suppression. Reads of a
//! practice's data are audited in that practice's log by the store.

use crate::dto::{ListOf, PhoneOptOutDto, SupportDeliveryDto, UserDto};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, Support};
use crate::params;
use crate::state::ApiState;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::support::ReadAt;
use gatehouse_domain::FieldError;
use gatehouse_domain::ids::{EmailAddress, PhoneE164};
use gatehouse_domain::lookup::{DestinationLookup, UserLookup};
use serde::Deserialize;

/// `?q=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserSearchQuery {
    /// At least 3 characters: the start of a username, an email address from its local
    /// part and `@` on (case-insensitive), or a phone number (whole, in any common
    /// notation, or its last 4 or more digits)
    pub q: Option<String>,
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    /// From the previous page's next_cursor
    pub cursor: Option<String>,
}

/// `?destination=&limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliverySearchQuery {
    /// An email address or a phone number
    pub destination: Option<String>,
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    /// From the previous page's next_cursor
    pub cursor: Option<String>,
}

/// The first field error of a domain parse, for collecting with others.
fn field_error(e: gatehouse_domain::Error, field: &str) -> FieldError {
    match e {
        gatehouse_domain::Error::Validation(mut v) if !v.is_empty() => v.remove(0),
        other => FieldError::new(field, other.to_string()),
    }
}

/// Both parsed values, or every error of the two at once.
fn both<A, B>(a: Result<A, FieldError>, b: Result<B, FieldError>) -> Result<(A, B), ApiError> {
    match (a, b) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => Err(ApiError::validation(
            a.err().into_iter().chain(b.err()).collect(),
        )),
    }
}

/// Users of every practice whose username starts with `q`, whose email address starts with
/// it (when it holds an `@`), or whose phone number is `q` or ends with its digits, ordered
/// by username. Each practice whose users are answered records a `support.read` in its log.
#[utoipa::path(get, path = "/v1/support/users", tag = "support", security(("bearer" = [])),
    params(UserSearchQuery),
    responses((status = 200, body = ListOf<UserDto>), (status = 401, body = Problem),
        (status = 403, description = "forbidden: not the vendor's support staff", body = Problem),
        (status = 422, description = "validation_failed: q missing or shorter than 3 characters", body = Problem)))]
pub async fn users(
    st: web::Data<ApiState>,
    req: HttpRequest,
    Meta(meta): Meta,
    Support(p): Support,
    q: web::Query<UserSearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (lookup, cursor) = both(
        UserLookup::parse(q.q.as_deref().unwrap_or_default()).map_err(|e| field_error(e, "q")),
        params::id_cursor(q.cursor.as_deref()),
    )?;
    let page = st
        .app
        .support()
        .find_users(
            &p,
            &lookup,
            (params::limit(q.limit), cursor),
            ReadAt {
                path: req.path(),
                meta: &meta,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page
            .items
            .iter()
            .map(|f| UserDto::from_user(&f.user, &f.tenant))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Deliveries to an email address or phone number across practices, newest first: each
/// a Delivery plus the `company` and `user_id` it belongs to, its destination masked.
/// Each practice whose deliveries are answered records a `support.read` in its log.
#[utoipa::path(get, path = "/v1/support/deliveries", tag = "support", security(("bearer" = [])),
    params(DeliverySearchQuery),
    responses((status = 200, body = ListOf<SupportDeliveryDto>), (status = 401, body = Problem),
        (status = 403, description = "forbidden: not the vendor's support staff", body = Problem),
        (status = 422, description = "validation_failed: destination is neither an email address nor a phone number", body = Problem)))]
pub async fn deliveries(
    st: web::Data<ApiState>,
    req: HttpRequest,
    Meta(meta): Meta,
    Support(p): Support,
    q: web::Query<DeliverySearchQuery>,
) -> Result<HttpResponse, ApiError> {
    let (destination, cursor) = both(
        DestinationLookup::parse(q.destination.as_deref().unwrap_or_default())
            .map_err(|e| field_error(e, "destination")),
        params::id_cursor(q.cursor.as_deref()),
    )?;
    let page = st
        .app
        .support()
        .deliveries_to(
            &p,
            &destination,
            (params::limit(q.limit), cursor),
            ReadAt {
                path: req.path(),
                meta: &meta,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: page
            .items
            .into_iter()
            .map(SupportDeliveryDto::from)
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Whether a number opted out of text messages (D3); a number never seen is not.
#[utoipa::path(get, path = "/v1/support/phone-opt-outs/{e164}", tag = "support", security(("bearer" = [])),
    params(("e164" = String, Path, description = "The phone number, e.g. +15551234567")),
    responses((status = 200, body = PhoneOptOutDto), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 422, description = "validation_failed: not a phone number", body = Problem)))]
pub async fn phone_opt_out(
    st: web::Data<ApiState>,
    _who: Support,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let phone = PhoneE164::parse(&path)?;
    let state = st.app.deployment().phone_opt_out(&phone).await?;
    Ok(HttpResponse::Ok().json(PhoneOptOutDto {
        phone: phone.as_str().to_owned(),
        opted_out: state.as_ref().is_some_and(|s| s.opted_out),
        since: state.as_ref().map(|s| s.since),
        source: state.map(|s| s.source),
    }))
}

/// Lifts an address's suppression once the mailbox is fixed (D4); audited in the
/// operator's log with the address masked.
#[utoipa::path(delete, path = "/v1/support/email-suppressions/{email}", tag = "support", security(("bearer" = [])),
    params(("email" = String, Path)),
    responses((status = 204, description = "Lifted"), (status = 401, body = Problem),
        (status = 403, body = Problem),
        (status = 404, description = "not_found: the address is not suppressed", body = Problem),
        (status = 422, description = "validation_failed: not an email address", body = Problem)))]
pub async fn lift_email_suppression(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    Support(p): Support,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let email = EmailAddress::parse(&path)?;
    st.app
        .support()
        .lift_email_suppression(&p, &email, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
