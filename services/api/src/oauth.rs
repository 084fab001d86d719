//! The OpenID Connect provider's machine endpoints (oidc.md): discovery, the JWKS, token,
//! userinfo, revocation and introspection. They speak OAuth 2.0's own formats (form
//! bodies in, `{"error", "error_description"}` out, RFC 6749 5.2; RFC 6750 3 for bearer
//! tokens), not problem+json, and are described by discovery rather than by the OpenAPI
//! document. `/oauth2/authorize` and `/oauth2/logout` are pages (gatehouse-web).

use crate::state::ApiState;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gatehouse_app::oidc::{ClientAuth, ErrorCode, OAuthError, OidcError, TokenRequest};
use gatehouse_domain::oidc::{ACR_MFA, ACR_PWD, Scopes};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::collections::HashMap;

/// Largest form body of a token, revocation or introspection request.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// Registers the endpoints.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery),
    )
    .route("/oauth2/jwks", web::get().to(jwks))
    .route("/oauth2/token", web::post().to(token))
    .route("/oauth2/userinfo", web::get().to(userinfo))
    .route("/oauth2/userinfo", web::post().to(userinfo))
    .route("/oauth2/revoke", web::post().to(revoke))
    .route("/oauth2/introspect", web::post().to(introspect));
}

/// An OAuth error answer: 400, or 401 for a client that failed to authenticate (with the
/// challenge RFC 6749 5.2 asks for), never cached.
fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = match e.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = HttpResponse::build(status);
    r.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if status == StatusCode::UNAUTHORIZED {
        r.insert_header((header::WWW_AUTHENTICATE, "Basic realm=\"gatehouse\""));
    }
    r.json(json!({"error": e.code.as_str(), "error_description": e.description}))
}

fn failed(e: OidcError) -> HttpResponse {
    match e {
        OidcError::OAuth(o) => oauth_error(&o),
        OidcError::Failed(e) => {
            tracing::error!(error = %e, "an OAuth endpoint failed");
            oauth_error(&OAuthError::new(
                ErrorCode::ServerError,
                "the request could not be completed; try again",
            ))
        }
    }
}

fn no_store(mut r: actix_web::HttpResponseBuilder, body: serde_json::Value) -> HttpResponse {
    r.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}

/// A form body's parameters; one given twice is refused (RFC 6749 3.1).
fn form(req: &HttpRequest, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media.as_deref() != Some("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "send the parameters as application/x-www-form-urlencoded",
        ));
    }
    if body.len() > MAX_FORM_BYTES {
        return Err(OAuthError::invalid_request("the request body is too large"));
    }
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(OAuthError::invalid_request(format!(
                "{k} is given more than once"
            )));
        }
    }
    // Empty values count as absent (RFC 6749 3.1).
    out.retain(|_, v| !v.is_empty());
    Ok(out)
}

/// One form-encoded part of a Basic credential (RFC 6749 2.3.1).
fn form_decoded(part: &str) -> String {
    url::form_urlencoded::parse(format!("v={part}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The client's credentials: `Authorization: Basic` and/or the body's.
fn client_auth(
    req: &HttpRequest,
    f: &mut HashMap<String, String>,
) -> Result<ClientAuth, OAuthError> {
    let basic = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let v = v.to_str().map_err(|_| OAuthError::invalid_client())?;
            let Some((scheme, cred)) = v.split_once(' ') else {
                return Err(OAuthError::invalid_client());
            };
            if !scheme.eq_ignore_ascii_case("basic") {
                return Err(OAuthError::invalid_client());
            }
            let raw = STANDARD
                .decode(cred.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(OAuthError::invalid_client)?;
            let (id, secret) = raw.split_once(':').ok_or_else(OAuthError::invalid_client)?;
            Some((form_decoded(id), SecretString::from(form_decoded(secret))))
        }
    };
    Ok(ClientAuth {
        basic,
        client_id: f.remove("client_id"),
        client_secret: f.remove("client_secret").map(SecretString::from),
    })
}

/// A client's form: how it authenticated, and the other parameters.
fn client_form(
    req: &HttpRequest,
    body: &[u8],
) -> Result<(ClientAuth, HashMap<String, String>), OAuthError> {
    let mut f = form(req, body)?;
    let auth = client_auth(req, &mut f)?;
    Ok((auth, f))
}

/// A revocation's or introspection's form: the client, and the `token` it names.
fn token_request(req: &HttpRequest, body: &[u8]) -> Result<(ClientAuth, SecretString), OAuthError> {
    let (auth, mut f) = client_form(req, body)?;
    let token = f
        .remove("token")
        .map(SecretString::from)
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    Ok((auth, token))
}

/// `GET /.well-known/openid-configuration` (OpenID Connect Discovery 1.0).
async fn discovery(st: web::Data<ApiState>) -> HttpResponse {
    let iss = st.issuer.as_str();
    let claims = [
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "acr",
        "amr",
        "company",
        "company_name",
        "role",
        "groups",
        "preferred_username",
        "name",
        "given_name",
        "family_name",
        "updated_at",
        "email",
        "email_verified",
        "phone_number",
        "phone_number_verified",
    ];

    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .json(json!({
            "issuer": iss,
            "authorization_endpoint": format!("{iss}/oauth2/authorize"),
            "token_endpoint": format!("{iss}/oauth2/token"),
            "userinfo_endpoint": format!("{iss}/oauth2/userinfo"),
            "jwks_uri": format!("{iss}/oauth2/jwks"),
            "revocation_endpoint": format!("{iss}/oauth2/revoke"),
            "introspection_endpoint": format!("{iss}/oauth2/introspect"),
            "end_session_endpoint": format!("{iss}/oauth2/logout"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "scopes_supported": Scopes::SUPPORTED,
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": claims,
            "acr_values_supported": [ACR_PWD, ACR_MFA],
            "prompt_values_supported": ["none", "login"],
            "claims_parameter_supported": false,
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "authorization_response_iss_parameter_supported": true,
        }))
}

/// `GET /oauth2/jwks`: the published signing keys.
async fn jwks(st: web::Data<ApiState>) -> HttpResponse {
    match st.app.oidc(&st.issuer).jwks().await {
        // Short: a rotation's new key must reach clients before it signs.
        Ok(keys) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
            .json(json!({ "keys": keys })),
        Err(e) => failed(OidcError::Failed(e)),
    }
}

/// `POST /oauth2/token`.
async fn token(req: HttpRequest, st: web::Data<ApiState>, body: web::Bytes) -> HttpResponse {
    let (auth, mut f) = match client_form(&req, &body) {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    let meta = crate::extract::meta_of(&req, &st);
    let secret = |k: &str, f: &mut HashMap<String, String>| f.remove(k).map(SecretString::from);
    let request = TokenRequest {
        grant_type: f.remove("grant_type"),
        code: secret("code", &mut f),
        redirect_uri: f.remove("redirect_uri"),
        code_verifier: secret("code_verifier", &mut f),
        refresh_token: secret("refresh_token", &mut f),
    };
    match st.app.oidc(&st.issuer).token(auth, request, &meta).await {
        Ok(t) => {
            let mut body = json!({
                "access_token": t.access_token.expose_secret(),
                "token_type": "Bearer",
                "expires_in": t.expires_in,
                "id_token": t.id_token,
                "scope": t.scope,
            });
            if let Some(r) = &t.refresh_token {
                body["refresh_token"] = json!(r.expose_secret());
            }
            no_store(HttpResponse::Ok(), body)
        }
        Err(e) => failed(e),
    }
}

/// `GET|POST /oauth2/userinfo` with the access token as a bearer token.
async fn userinfo(req: HttpRequest, st: web::Data<ApiState>) -> HttpResponse {
    let challenge = |error: Option<&str>| {
        let v = match error {
            Some(e) => format!("Bearer realm=\"gatehouse\", error=\"{e}\""),
            None => "Bearer realm=\"gatehouse\"".to_owned(),
        };
        HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, v))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish()
    };
    let Some(token) = crate::extract::bearer(&req) else {
        return challenge(None);
    };
    match st.app.oidc(&st.issuer).userinfo(&token).await {
        Ok(claims) => no_store(HttpResponse::Ok(), json!(claims)),
        Err(OidcError::OAuth(_)) => challenge(Some("invalid_token")),
        Err(e) => failed(e),
    }
}

/// `POST /oauth2/revoke` (RFC 7009): 200 whether or not the token was live.
async fn revoke(req: HttpRequest, st: web::Data<ApiState>, body: web::Bytes) -> HttpResponse {
    let (auth, token) = match token_request(&req, &body) {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    let meta = crate::extract::meta_of(&req, &st);
    match st.app.oidc(&st.issuer).revoke(auth, &token, &meta).await {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(e) => failed(e),
    }
}

/// `POST /oauth2/introspect` (RFC 7662).
async fn introspect(req: HttpRequest, st: web::Data<ApiState>, body: web::Bytes) -> HttpResponse {
    let (auth, token) = match token_request(&req, &body) {
        Ok(t) => t,
        Err(e) => return oauth_error(&e),
    };
    match st.app.oidc(&st.issuer).introspect(auth, &token).await {
        Ok(i) if !i.active => no_store(HttpResponse::Ok(), json!({"active": false})),
        Ok(i) => {
            let mut body = json!({
                "active": true,
                "scope": i.scope,
                "client_id": i.client_id,
                "username": i.username,
                "token_type": i.token_type,
                "exp": i.exp,
                "iat": i.iat,
                "sub": i.sub,
                "aud": i.aud,
                "iss": st.issuer,
                "company": i.company,
            });
            if let Some(o) = body.as_object_mut() {
                o.retain(|_, v| !v.is_null());
            }
            no_store(HttpResponse::Ok(), body)
        }
        Err(e) => failed(e),
    }
}
