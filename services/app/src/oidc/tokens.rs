//! The machine endpoints: `/oauth2/token` (authorization codes, refresh tokens with
//! rotation and reuse detection), `/oauth2/userinfo`, `/oauth2/revoke` (RFC 7009) and
//! `/oauth2/introspect` (RFC 7662).
//!
//! A code is spent in the same statement that finds it, so of two concurrent exchanges
//! one wins; a second use revokes what the first issued. A refresh token is spent the
//! same way when used; presenting a spent one revokes its whole family (every token
//! descended from the same code). Refresh tokens live no longer than the browser session
//! they came from, and die with it (sign-out, revocation, suspension).

use super::{Oidc, OidcError, hash_of, new_secret};
use crate::{RequestMeta, Result};
use chrono::{DateTime, Duration, Utc};
use gatehouse_domain::audit::Actor;
use gatehouse_domain::audit::details::Details;
use gatehouse_domain::oidc::keys::SigningKey;
use gatehouse_domain::oidc::{
    ACCESS_TOKEN_SECONDS, AuthContext, ClaimSource, ClientKind, ErrorCode, ID_TOKEN_SECONDS,
    IdTokenClaims, OAuthError, Scopes, UserClaims, verifier_matches,
};
use gatehouse_store::audit::{event, user_target};
use gatehouse_store::oidc::{Client, Grant, Taken, TokenKind, TokenRow};
use gatehouse_store::scope::UserRef;
use gatehouse_store::{Tenant, TenantStatus, User};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

/// How the client authenticated at the endpoint (RFC 6749 2.3.1).
#[derive(Debug, Default)]
pub struct ClientAuth {
    /// From `Authorization: Basic` (already form-decoded).
    pub basic: Option<(String, SecretString)>,
    /// `client_id` in the body.
    pub client_id: Option<String>,
    /// `client_secret` in the body.
    pub client_secret: Option<SecretString>,
}

/// `POST /oauth2/token`'s form.
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub code: Option<SecretString>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<SecretString>,
    pub refresh_token: Option<SecretString>,
}

/// The token response (RFC 6749 5.1, OIDC Core 3.1.3.3).
#[derive(Debug)]
pub struct TokenResponse {
    pub access_token: SecretString,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
    pub refresh_token: Option<SecretString>,
}

/// RFC 7662's answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub token_type: Option<&'static str>,
    pub exp: Option<i64>,
    pub iat: Option<i64>,
    pub sub: Option<String>,
    pub aud: Option<String>,
    pub company: Option<String>,
}

fn bad_grant(why: &str) -> OidcError {
    OAuthError::invalid_grant(why).into()
}

/// The actor of an event a client causes for its user.
fn actor_for(u: &User) -> Actor {
    gatehouse_store::audit::actor_user(u)
}

impl Oidc<'_> {
    /// The client the request authenticates as (RFC 6749 2.3.1, OIDC Core 9): a
    /// confidential client by its secret (Basic or in the body, not both), a public one by
    /// its id alone.
    pub async fn authenticate_client(&self, auth: ClientAuth) -> Result<Client, OidcError> {
        let (id, secret) = match (auth.basic, auth.client_id, auth.client_secret) {
            (Some(_), _, Some(_)) => {
                return Err(OAuthError::invalid_request(
                    "use one client authentication method, not two",
                )
                .into());
            }
            (Some((id, secret)), body_id, None) => {
                if body_id.is_some_and(|b| b != id) {
                    return Err(OAuthError::invalid_client().into());
                }
                (id, Some(secret))
            }
            (None, Some(id), secret) => (id, secret),
            (None, None, _) => return Err(OAuthError::invalid_client().into()),
        };
        let Some(client) = self.store.oidc().client(&id).await? else {
            return Err(OAuthError::invalid_client().into());
        };
        let now = self.store.clock().now();
        let ok = match (client.kind, secret) {
            (ClientKind::Public, None) => true,
            (ClientKind::Public, Some(_)) | (ClientKind::Confidential, None) => false,
            (ClientKind::Confidential, Some(s)) => {
                let h = hash_of(s.expose_secret());
                client.secret_hash.as_deref() == Some(h.as_str())
                    || (client.previous_secret_hash.as_deref() == Some(h.as_str())
                        && client.previous_secret_until.is_some_and(|u| now < u))
            }
        };
        if !ok {
            return Err(OAuthError::invalid_client().into());
        }
        Ok(client)
    }

    /// `POST /oauth2/token`.
    pub async fn token(
        &self,
        auth: ClientAuth,
        req: TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OidcError> {
        let client = self.authenticate_client(auth).await?;
        match req.grant_type.as_deref() {
            Some("authorization_code") => self.exchange_code(&client, req, meta).await,
            Some("refresh_token") => self.refresh(&client, req, meta).await,
            None => Err(OAuthError::invalid_request("grant_type is missing").into()),
            Some(_) => Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                "only authorization_code and refresh_token are supported",
            )
            .into()),
        }
    }

    async fn exchange_code(
        &self,
        client: &Client,
        req: TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OidcError> {
        let (Some(code), Some(verifier)) = (req.code, req.code_verifier) else {
            return Err(OAuthError::invalid_request("code and code_verifier are required").into());
        };
        let now = self.store.clock().now();
        let code_hash = hash_of(code.expose_secret());
        // Everything read first: a write transaction holds its connection, and eight
        // exchanges at once each waiting for a second one would empty the pool.
        let Some(found) = self.store.oidc().code(&code_hash).await? else {
            return Err(bad_grant("the code is not valid"));
        };
        let holder = self.holder(&found.grant).await;
        let live = self
            .store
            .session_live(found.grant.tenant_id, found.grant.session_id)
            .await?;
        let signer = self.loaded().await?.signer.clone();
        let txn = self.store.begin_write().await?;
        let row = match self.store.oidc().take_code(&*txn, &code_hash, now).await? {
            Taken::Missing => return Err(bad_grant("the code is not valid")),
            Taken::Spent(row) => {
                // A replay: whatever the first exchange issued is revoked.
                let revoked = self
                    .store
                    .oidc()
                    .revoke_issued_by_code(&*txn, (row.grant.tenant_id, &code_hash), now)
                    .await?;
                let scope = self.store.tenant(row.grant.tenant_id);
                let (actor, name) = match &holder {
                    Ok((_, u)) => (actor_for(u), u.username.clone()),
                    Err(_) => (
                        Actor {
                            kind: gatehouse_domain::audit::ActorKind::User,
                            id: Some(row.grant.user_id.0),
                            username: None,
                        },
                        String::new(),
                    ),
                };
                scope
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            actor,
                            Some(user_target(row.grant.user_id, &name)),
                            meta,
                            Details::OidcReplayDetected {
                                client_id: row.grant.client_id.clone(),
                                grant_type: "authorization_code",
                                revoked,
                            },
                        ),
                    )
                    .await?;
                txn.commit().await?;
                return Err(bad_grant("the code was already used"));
            }
            Taken::Fresh(row) => row,
        };
        // The code is spent whatever follows: commit that even when refused.
        let refused = if row.expires_at <= now {
            Some("the code has expired")
        } else if row.grant.client_id != client.client_id {
            Some("the code was issued to another client")
        } else if req.redirect_uri.as_deref() != Some(row.redirect_uri.as_str()) {
            Some("redirect_uri does not match the authorization request")
        } else if !verifier_matches(verifier.expose_secret(), &row.code_challenge) {
            Some("code_verifier does not match the code_challenge")
        } else {
            None
        };
        if let Some(why) = refused {
            txn.commit().await?;
            return Err(bad_grant(why));
        }
        let (tenant, user) = match holder {
            Ok(h) if live => h,
            Ok(_) => {
                txn.commit().await?;
                return Err(bad_grant("the sign-in behind the code has ended"));
            }
            Err(e) => {
                txn.commit().await?;
                return Err(e);
            }
        };
        let issued = self
            .issue(
                &txn,
                (&row.grant, Uuid::new_v4(), Some(&code_hash)),
                (&tenant, &user, &signer),
                row.nonce.clone(),
                None,
            )
            .await?;
        self.audit_issued(&txn, &user, client, "authorization_code", &issued, meta)
            .await?;
        txn.commit().await?;
        Ok(issued)
    }

    async fn refresh(
        &self,
        client: &Client,
        req: TokenRequest,
        meta: &RequestMeta,
    ) -> Result<TokenResponse, OidcError> {
        let Some(presented) = req.refresh_token else {
            return Err(OAuthError::invalid_request("refresh_token is required").into());
        };
        let now = self.store.clock().now();
        let Some(row) = self
            .store
            .oidc()
            .token(&hash_of(presented.expose_secret()))
            .await?
            .filter(|t| t.kind == TokenKind::Refresh)
        else {
            return Err(bad_grant("the refresh token is not valid"));
        };
        if row.grant.client_id != client.client_id {
            return Err(bad_grant("the refresh token was issued to another client"));
        }
        if row.revoked_at.is_some() || row.expires_at <= now {
            return Err(bad_grant("the refresh token is no longer valid"));
        }
        // Read before the write transaction (see `exchange_code`).
        let live = self
            .store
            .session_live(row.grant.tenant_id, row.grant.session_id)
            .await?;
        let holder = self.holder(&row.grant).await;
        let signer = self.loaded().await?.signer.clone();
        let txn = self.store.begin_write().await?;
        if row.used_at.is_some()
            || !self
                .store
                .oidc()
                .spend_refresh(&*txn, (row.grant.tenant_id, row.id), now)
                .await?
        {
            // Used before (or by a concurrent request): someone holds a copy. The whole
            // family goes, the legitimate holder's newest token with it.
            let revoked = self
                .store
                .oidc()
                .revoke_family(&*txn, (row.grant.tenant_id, row.family), now)
                .await?;
            if let Ok((_, user)) = &holder {
                self.store
                    .tenant(row.grant.tenant_id)
                    .audit()
                    .append_in(
                        &txn,
                        event(
                            actor_for(user),
                            Some(user_target(user.id, &user.username)),
                            meta,
                            Details::OidcReplayDetected {
                                client_id: client.client_id.clone(),
                                grant_type: "refresh_token",
                                revoked,
                            },
                        ),
                    )
                    .await?;
            }
            txn.commit().await?;
            return Err(bad_grant("the refresh token was already used"));
        }
        let (tenant, user) = match (live, holder) {
            (true, Ok(h)) => h,
            _ => {
                self.store
                    .oidc()
                    .revoke_family(&*txn, (row.grant.tenant_id, row.family), now)
                    .await?;
                txn.commit().await?;
                return Err(bad_grant("the sign-in behind the refresh token has ended"));
            }
        };
        let issued = self
            .issue(
                &txn,
                (&row.grant, row.family, None),
                (&tenant, &user, &signer),
                None,
                Some(row.expires_at),
            )
            .await?;
        self.audit_issued(&txn, &user, client, "refresh_token", &issued, meta)
            .await?;
        txn.commit().await?;
        Ok(issued)
    }

    /// The practice and user a grant is for, while both may still sign in.
    async fn holder(&self, g: &Grant) -> Result<(Tenant, User), OidcError> {
        let tenant = self
            .store
            .tenant_by_id(g.tenant_id)
            .await?
            .filter(|t| t.status == TenantStatus::Active)
            .ok_or_else(|| bad_grant("the user's practice is suspended"))?;
        let user = match self
            .store
            .tenant(g.tenant_id)
            .users()
            .get(&UserRef::Id(g.user_id.0))
            .await
        {
            Ok(u) if u.active && !u.locked => u,
            Ok(_) | Err(crate::Error::Domain(gatehouse_domain::Error::NotFound)) => {
                return Err(bad_grant("the user can no longer sign in"));
            }
            Err(e) => return Err(e.into()),
        };
        Ok((tenant, user))
    }

    /// A new access token, ID token and (with `offline_access`) refresh token for `grant`.
    async fn issue(
        &self,
        txn: &gatehouse_store::WriteTxn,
        (grant, family, code_hash): (&Grant, Uuid, Option<&str>),
        (tenant, user, signer): (&Tenant, &User, &SigningKey),
        nonce: Option<String>,
        refresh_until: Option<DateTime<Utc>>,
    ) -> Result<TokenResponse, OidcError> {
        let now = self.store.clock().now();
        let scopes = Scopes::parse(&grant.scope)?;
        let (access, access_hash) = new_secret();
        self.store
            .oidc()
            .insert_token(
                &**txn,
                (TokenKind::Access, &access_hash),
                grant,
                (family, code_hash),
                now,
                now + Duration::seconds(ACCESS_TOKEN_SECONDS),
            )
            .await?;
        let refresh = if scopes.offline_access {
            let (refresh, refresh_hash) = new_secret();
            // No longer than the browser session's absolute life (one shift).
            let until = refresh_until
                .unwrap_or_else(|| grant.auth_time + self.store.config().session_policy.absolute);
            self.store
                .oidc()
                .insert_token(
                    &**txn,
                    (TokenKind::Refresh, &refresh_hash),
                    grant,
                    (family, code_hash),
                    now,
                    until,
                )
                .await?;
            Some(refresh)
        } else {
            None
        };
        let auth = AuthContext::from_text(Some(&grant.amr), false);
        let claims = IdTokenClaims {
            iss: self.issuer.to_owned(),
            aud: grant.client_id.clone(),
            exp: now.timestamp() + ID_TOKEN_SECONDS,
            iat: now.timestamp(),
            auth_time: grant.auth_time.timestamp(),
            nonce,
            sid: grant.session_id.0.to_string(),
            acr: auth.acr().to_owned(),
            amr: auth.amr.clone(),
            user: claims_of(tenant, user, scopes),
        };
        let id_token = signer
            .sign(&claims)
            .map_err(|e| crate::Error::Internal(e.to_string()))?;
        Ok(TokenResponse {
            access_token: access,
            expires_in: ACCESS_TOKEN_SECONDS,
            id_token,
            scope: scopes.to_text(),
            refresh_token: refresh,
        })
    }

    async fn audit_issued(
        &self,
        txn: &gatehouse_store::WriteTxn,
        user: &User,
        client: &Client,
        grant_type: &'static str,
        issued: &TokenResponse,
        meta: &RequestMeta,
    ) -> Result<()> {
        self.store
            .tenant(user.tenant_id)
            .audit()
            .append_in(
                txn,
                event(
                    actor_for(user),
                    Some(user_target(user.id, &user.username)),
                    meta,
                    Details::OidcTokensIssued {
                        client_id: client.client_id.clone(),
                        grant_type,
                        refresh_token: issued.refresh_token.is_some(),
                    },
                ),
            )
            .await
    }

    /// A live access token: not expired, not revoked, its browser session not ended.
    async fn live_access(&self, token: &str) -> Result<Option<TokenRow>, OidcError> {
        let now = self.store.clock().now();
        let Some(row) = self.store.oidc().token(&hash_of(token)).await? else {
            return Ok(None);
        };
        let live = row.kind == TokenKind::Access
            && row.revoked_at.is_none()
            && row.expires_at > now
            && self
                .store
                .session_live(row.grant.tenant_id, row.grant.session_id)
                .await?;
        Ok(live.then_some(row))
    }

    /// `GET|POST /oauth2/userinfo`: the claims the access token's scopes grant.
    pub async fn userinfo(&self, access_token: &SecretString) -> Result<UserClaims, OidcError> {
        let invalid = || OAuthError::new(ErrorCode::InvalidToken, "the access token is not valid");
        let Some(row) = self.live_access(access_token.expose_secret()).await? else {
            return Err(invalid().into());
        };
        let (tenant, user) = self.holder(&row.grant).await.map_err(|_| invalid())?;
        Ok(claims_of(&tenant, &user, Scopes::parse(&row.grant.scope)?))
    }

    /// `POST /oauth2/revoke` (RFC 7009): a refresh token takes its family with it; a token
    /// of another client, or none at all, is answered the same (200, nothing revoked).
    pub async fn revoke(
        &self,
        auth: ClientAuth,
        token: &SecretString,
        meta: &RequestMeta,
    ) -> Result<(), OidcError> {
        let client = self.authenticate_client(auth).await?;
        let Some(row) = self
            .store
            .oidc()
            .token(&hash_of(token.expose_secret()))
            .await?
        else {
            return Ok(());
        };
        if row.grant.client_id != client.client_id {
            return Ok(());
        }
        let now = self.store.clock().now();
        let user = self
            .store
            .tenant(row.grant.tenant_id)
            .users()
            .get(&UserRef::Id(row.grant.user_id.0))
            .await;
        let txn = self.store.begin_write().await?;
        let revoked = match row.kind {
            TokenKind::Refresh => {
                self.store
                    .oidc()
                    .revoke_family(&*txn, (row.grant.tenant_id, row.family), now)
                    .await?
            }
            TokenKind::Access => {
                self.store
                    .oidc()
                    .revoke_token(&*txn, (row.grant.tenant_id, row.id), now)
                    .await?
            }
        };
        if revoked > 0
            && let Ok(user) = user
        {
            self.store
                .tenant(row.grant.tenant_id)
                .audit()
                .append_in(
                    &txn,
                    event(
                        actor_for(&user),
                        Some(user_target(user.id, &user.username)),
                        meta,
                        Details::OidcTokenRevoked {
                            client_id: client.client_id.clone(),
                            revoked,
                        },
                    ),
                )
                .await?;
        }
        txn.commit().await?;
        Ok(())
    }

    /// `POST /oauth2/introspect` (RFC 7662), for confidential clients, about their own
    /// tokens: another client's token is `active: false`, as an unknown one.
    pub async fn introspect(
        &self,
        auth: ClientAuth,
        token: &SecretString,
    ) -> Result<Introspection, OidcError> {
        let client = self.authenticate_client(auth).await?;
        if client.kind != ClientKind::Confidential {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                "introspection is for confidential clients",
            )
            .into());
        }
        let now = self.store.clock().now();
        let Some(row) = self
            .store
            .oidc()
            .token(&hash_of(token.expose_secret()))
            .await?
        else {
            return Ok(Introspection::default());
        };
        let live = row.grant.client_id == client.client_id
            && row.revoked_at.is_none()
            && row.used_at.is_none()
            && row.expires_at > now
            && self
                .store
                .session_live(row.grant.tenant_id, row.grant.session_id)
                .await?;
        if !live {
            return Ok(Introspection::default());
        }
        let Ok((tenant, user)) = self.holder(&row.grant).await else {
            return Ok(Introspection::default());
        };
        Ok(Introspection {
            active: true,
            scope: Some(row.grant.scope.clone()),
            client_id: Some(row.grant.client_id.clone()),
            username: Some(user.username.clone()),
            token_type: Some(match row.kind {
                TokenKind::Access => "Bearer",
                TokenKind::Refresh => "refresh_token",
            }),
            exp: Some(row.expires_at.timestamp()),
            iat: Some(row.created_at.timestamp()),
            sub: Some(user.id.0.to_string()),
            aud: Some(row.grant.client_id),
            company: Some(tenant.company.to_string()),
        })
    }
}

/// The user's claims under `scopes`.
fn claims_of(tenant: &Tenant, user: &User, scopes: Scopes) -> UserClaims {
    UserClaims::of(
        &ClaimSource {
            sub: user.id.0.to_string(),
            username: &user.username,
            first_name: &user.first_name,
            last_name: &user.last_name,
            email: user.email.as_deref(),
            email_verified: user.email_verified,
            phone: user.phone.as_deref(),
            phone_verified: user.phone_verified,
            updated_at: user.updated_at.timestamp(),
            company: tenant.company.as_str(),
            company_name: &tenant.name,
            role: user.role.as_str(),
            groups: user.groups.iter().map(|g| g.name.clone()).collect(),
        },
        scopes,
    )
}
