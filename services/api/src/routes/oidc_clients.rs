//! OpenID Connect clients (I2): registered by support admins, with step-up for changes.

use crate::dto::{
    CreateOidcClientRequest, ListOf, OidcClientDto, PatchOidcClientRequest, RotateSecretRequest,
};
use crate::error::{ApiError, Problem};
use crate::extract::{Meta, SupportAdmin};
use crate::routes::optional_body;
use crate::state::ApiState;
use actix_web::{HttpRequest, HttpResponse, web};
use gatehouse_app::oidc::{ClientInput, ClientPatch, IssuedClient};
use secrecy::ExposeSecret;

fn issued(i: IssuedClient) -> OidcClientDto {
    let mut dto = OidcClientDto::from(i.client);
    dto.client_secret = i.client_secret.map(|s| s.expose_secret().to_owned());
    dto
}

/// Every registered client (support admins).
#[utoipa::path(get, path = "/v1/oidc/clients", operation_id = "list_oidc_clients", tag = "oidc", security(("bearer" = [])),
    responses((status = 200, body = ListOf<OidcClientDto>), (status = 403, body = Problem)))]
pub async fn list(
    st: web::Data<ApiState>,
    SupportAdmin(p): SupportAdmin,
) -> Result<HttpResponse, ApiError> {
    let clients = st.app.oidc(&st.issuer).clients(&p).await?;
    Ok(HttpResponse::Ok().json(ListOf {
        items: clients.into_iter().map(OidcClientDto::from).collect(),
        next_cursor: None,
    }))
}

/// Registers a client (support admin, step-up). A confidential client's `client_secret`
/// is in this answer only.
#[utoipa::path(post, path = "/v1/oidc/clients", operation_id = "create_oidc_client", tag = "oidc", security(("bearer" = [])),
    request_body = CreateOidcClientRequest,
    responses((status = 201, body = OidcClientDto), (status = 403, description = "forbidden, or step_up_required", body = Problem),
        (status = 422, body = Problem)))]
pub async fn create(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    body: web::Json<CreateOidcClientRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let made = st
        .app
        .oidc(&st.issuer)
        .create_client(
            &p,
            ClientInput {
                name: b.name,
                redirect_uris: b.redirect_uris,
                post_logout_redirect_uris: b.post_logout_redirect_uris,
                kind: b.kind.into(),
                companies: b.companies,
                client_id: None,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Created()
        .insert_header(("cache-control", "no-store"))
        .json(issued(made)))
}

/// One client.
#[utoipa::path(get, path = "/v1/oidc/clients/{client_id}", operation_id = "get_oidc_client", tag = "oidc", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses((status = 200, body = OidcClientDto), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn get(
    st: web::Data<ApiState>,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let c = st.app.oidc(&st.issuer).client(&p, &path).await?;
    Ok(HttpResponse::Ok().json(OidcClientDto::from(c)))
}

/// Changes a client (support admin, step-up): the fields given.
#[utoipa::path(patch, path = "/v1/oidc/clients/{client_id}", operation_id = "patch_oidc_client", tag = "oidc", security(("bearer" = [])),
    params(("client_id" = String, Path)), request_body = PatchOidcClientRequest,
    responses((status = 200, body = OidcClientDto), (status = 403, description = "forbidden, or step_up_required", body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
    body: web::Json<PatchOidcClientRequest>,
) -> Result<HttpResponse, ApiError> {
    let b = body.into_inner();
    let c = st
        .app
        .oidc(&st.issuer)
        .update_client(
            &p,
            &path,
            ClientPatch {
                name: b.name,
                redirect_uris: b.redirect_uris,
                post_logout_redirect_uris: b.post_logout_redirect_uris,
                companies: b.companies,
            },
            &meta,
        )
        .await?;
    Ok(HttpResponse::Ok().json(OidcClientDto::from(c)))
}

/// Removes a client (support admin, step-up), with its codes and tokens.
#[utoipa::path(delete, path = "/v1/oidc/clients/{client_id}", operation_id = "delete_oidc_client", tag = "oidc", security(("bearer" = [])),
    params(("client_id" = String, Path)),
    responses((status = 204), (status = 403, description = "forbidden, or step_up_required", body = Problem),
        (status = 404, body = Problem)))]
pub async fn delete(
    st: web::Data<ApiState>,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    st.app
        .oidc(&st.issuer)
        .delete_client(&p, &path, &meta)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A new secret for a confidential client (support admin, step-up), in this answer only;
/// the old one keeps working for `grace_period_seconds` (default 0).
#[utoipa::path(post, path = "/v1/oidc/clients/{client_id}/secret", operation_id = "rotate_oidc_client_secret", tag = "oidc",
    security(("bearer" = [])), params(("client_id" = String, Path)),
    request_body(content = Option<RotateSecretRequest>, description = "optional"),
    responses((status = 200, body = OidcClientDto), (status = 403, description = "forbidden, or step_up_required", body = Problem),
        (status = 404, body = Problem), (status = 409, description = "conflict: a public client has no secret", body = Problem),
        (status = 422, body = Problem)))]
pub async fn rotate_secret(
    st: web::Data<ApiState>,
    req: HttpRequest,
    Meta(meta): Meta,
    SupportAdmin(p): SupportAdmin,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let b: RotateSecretRequest = optional_body(&req, &body)?;
    let made = st
        .app
        .oidc(&st.issuer)
        .rotate_secret(&p, &path, b.grace_period_seconds.unwrap_or(0), &meta)
        .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-store"))
        .json(issued(made)))
}
