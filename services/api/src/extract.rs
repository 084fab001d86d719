//! Extractors: who is calling, from where, and with what rights on which tenant.
//! Authorization lives here, once, not in each handler.

use crate::error::ApiError;
use crate::state::ApiState;
use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use gatehouse_domain::ids::CompanyId;
use gatehouse_domain::role::Role;
use gatehouse_store::{Principal, RequestMeta, Tenant};
use secrecy::SecretString;

fn state(req: &HttpRequest) -> Result<web::Data<ApiState>, ApiError> {
    req.app_data::<web::Data<ApiState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&std::io::Error::other("ApiState not registered")))
}

/// Request metadata for audit events and rate limits.
pub struct Meta(pub RequestMeta);

impl FromRequest for Meta {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(state(req).map(|s| Meta(meta_of(req, &s))))
    }
}

pub(crate) fn meta_of(req: &HttpRequest, s: &ApiState) -> RequestMeta {
    RequestMeta {
        ip: s.client_ip(req),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

pub(crate) fn bearer(req: &HttpRequest) -> Option<SecretString> {
    let v = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() && token.len() <= 256)
        .then(|| SecretString::from(token.to_owned()))
}

/// A request with a live session.
pub struct Auth(pub Principal);

impl FromRequest for Auth {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let st = state(req);
        let token = bearer(req);
        Box::pin(async move {
            let st = st?;
            let token = token.ok_or_else(ApiError::unauthenticated)?;
            let p = st.app.deployment().authenticate(&token).await?;
            gatehouse_store::telemetry::record_tenant(p.tenant.id);
            Ok(Auth(p))
        })
    }
}

/// A member of the vendor's support staff (either role).
pub struct Support(pub Principal);

/// A support admin of the operator tenant.
pub struct SupportAdmin(pub Principal);

fn is_support(p: &Principal) -> bool {
    p.tenant.is_operator && p.user.role.is_support()
}

impl FromRequest for Support {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, pl: &mut Payload) -> Self::Future {
        let auth = Auth::from_request(req, pl);
        Box::pin(async move {
            let Auth(p) = auth.await?;
            if is_support(&p) {
                Ok(Support(p))
            } else {
                Err(ApiError::forbidden(
                    "Only the vendor's support staff may do this.",
                ))
            }
        })
    }
}

impl FromRequest for SupportAdmin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, pl: &mut Payload) -> Self::Future {
        let auth = Auth::from_request(req, pl);
        Box::pin(async move {
            let Auth(p) = auth.await?;
            if is_support(&p) && p.user.role == Role::SupportAdmin {
                Ok(SupportAdmin(p))
            } else {
                Err(ApiError::forbidden("Only a support admin may do this."))
            }
        })
    }
}

/// How the caller reaches the tenant named in the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// An administrator of this very tenant.
    Admin,
    /// The vendor's support staff reading (every such read is audited in the tenant's log).
    SupportRead,
}

/// The tenant of `/v1/tenants/{company}/...`, for a caller allowed to administer it
/// (practice_admin of that tenant, or a support_admin in the operator tenant itself).
pub struct TenantAdmin {
    pub principal: Principal,
    pub tenant: Tenant,
}

/// The same, also admitting support staff for GET requests (read-only, audited; S1).
pub struct TenantReader {
    pub principal: Principal,
    pub tenant: Tenant,
    pub access: Access,
}

/// Resolves the path's tenant for the caller. Another tenant's resources answer 404,
/// never 403, so their existence does not leak (T1).
async fn resolve(
    req: &HttpRequest,
    p: Principal,
    allow_support_read: bool,
) -> Result<TenantReader, ApiError> {
    let st = state(req)?;
    let company = req
        .match_info()
        .get("company")
        .and_then(|c| CompanyId::parse(c).ok())
        .ok_or_else(ApiError::not_found)?;
    let own = p.tenant.company == company;
    if own {
        if p.user.role.administers_own_tenant() {
            return Ok(TenantReader {
                tenant: p.tenant.clone(),
                principal: p,
                access: Access::Admin,
            });
        }
        return Err(ApiError::forbidden("This needs a practice administrator."));
    }
    if allow_support_read && req.method() == Method::GET && is_support(&p) {
        let tenant = st
            .app
            .deployment()
            .tenant(&company)
            .await?
            .ok_or_else(ApiError::not_found)?;
        // The practice read, not the operator's own tenant.
        gatehouse_store::telemetry::record_tenant(tenant.id);
        let meta = meta_of(req, &st);
        let at = gatehouse_app::support::ReadAt {
            path: req.path(),
            meta: &meta,
        };
        st.app
            .support()
            .record_read(&p, &tenant, req.query_string(), at)
            .await?;
        return Ok(TenantReader {
            principal: p,
            tenant,
            access: Access::SupportRead,
        });
    }
    Err(ApiError::not_found())
}

impl FromRequest for TenantAdmin {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, pl: &mut Payload) -> Self::Future {
        let auth = Auth::from_request(req, pl);
        let req = req.clone();
        Box::pin(async move {
            let Auth(p) = auth.await?;
            let r = resolve(&req, p, false).await?;
            Ok(TenantAdmin {
                principal: r.principal,
                tenant: r.tenant,
            })
        })
    }
}

impl FromRequest for TenantReader {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, pl: &mut Payload) -> Self::Future {
        let auth = Auth::from_request(req, pl);
        let req = req.clone();
        Box::pin(async move {
            let Auth(p) = auth.await?;
            resolve(&req, p, true).await
        })
    }
}
