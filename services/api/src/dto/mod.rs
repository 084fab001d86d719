//! Request and response bodies exactly as api.md names them, one file per area; this
//! module holds what every area shares (lists, counts, query parameters' schemas).

mod audit;
mod deliveries;
mod escalations;
mod groups;
mod mfa;
mod oidc;
mod signin;
mod tenants;
mod users;

pub use audit::*;
pub use deliveries::*;
pub use escalations::*;
pub use groups::*;
pub use mfa::*;
pub use oidc::*;
pub use signin::*;
pub use tenants::*;
pub use users::*;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How many records a bulk action changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountDto {
    pub count: u64,
}

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOf<T: ToSchema> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// `?limit=&cursor=`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 500, default 50
    #[param(schema_with = crate::dto::limit_schema)]
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// `?limit=`: any whole number a `u64` holds; below 1 counts as 1, above 500 as 500.
/// No `format`: int64 would claim the values above `i64::MAX` are refused.
pub fn limit_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Integer)
        .minimum(Some(0u64))
        .maximum(Some(u64::MAX))
        .description(Some(
            "1 to 500, default 50 (0 counts as 1, more than 500 as 500)",
        ))
        .build()
}

/// A query value that may also be given empty: like an absent parameter, `?x=` means
/// no filter (see `params::text`).
fn or_empty(schema: utoipa::openapi::RefOr<utoipa::openapi::Schema>) -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(schema)
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(0)),
        )
        .build()
        .into()
}

/// `?since=`, `?until=`: an RFC 3339 instant, or empty.
pub fn query_instant_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into(),
    )
}

/// `?active=`, `?locked=`: true or false (1 or 0), or empty.
pub fn query_flag_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    or_empty(
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(["true", "false", "1", "0"]))
            .into(),
    )
}

/// `?status=` of escalations: a status, or empty.
pub fn query_escalation_status_schema() -> utoipa::openapi::Schema {
    or_empty(<crate::vocabulary::EscalationStatus as utoipa::PartialSchema>::schema())
}

/// Readiness answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}
