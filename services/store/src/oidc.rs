//! The OpenID Connect provider's persistence (I1, I2): clients, signing keys,
//! authorization requests, codes and tokens. Deciding is gatehouse-app's.
//!
//! Clients and keys belong to the deployment (registered by the vendor's support
//! admins), not to a practice. Codes and tokens carry the practice of the user they were
//! issued for and are found by the hash of the secret that names them, as sessions are;
//! what a use case does with one (revoke a family, a session's tokens) is bounded by the
//! row found.

use crate::entities::{oidc_clients, oidc_codes, oidc_keys, oidc_requests, oidc_tokens};
use crate::{Inner, Result, Store, StoreError};
use chrono::{DateTime, Utc};
use gatehouse_domain::ids::{SessionId, TenantId, UserId};
use gatehouse_domain::oidc::ClientKind;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use uuid::Uuid;

/// A registered client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    pub id: Uuid,
    pub client_id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// The practices whose users may sign in to it; `None`: every practice.
    pub companies: Option<Vec<String>>,
    pub secret_hash: Option<String>,
    /// A rotated secret still accepted until `previous_secret_until`.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_until: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn json_list(text: &str, what: &str) -> Result<Vec<String>> {
    serde_json::from_str(text).map_err(|_| StoreError::Corrupt(format!("oidc client {what}")))
}

fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

impl TryFrom<oidc_clients::Model> for Client {
    type Error = StoreError;

    fn try_from(m: oidc_clients::Model) -> Result<Self> {
        Ok(Client {
            kind: ClientKind::parse(&m.kind)
                .ok_or_else(|| StoreError::Corrupt(format!("oidc client {}: kind", m.id)))?,
            redirect_uris: json_list(&m.redirect_uris, "redirect_uris")?,
            post_logout_redirect_uris: json_list(
                &m.post_logout_redirect_uris,
                "post_logout_redirect_uris",
            )?,
            companies: match &m.companies {
                Some(c) => Some(json_list(c, "companies")?),
                None => None,
            },
            id: m.id,
            client_id: m.client_id,
            name: m.name,
            secret_hash: m.secret_hash,
            previous_secret_hash: m.previous_secret_hash,
            previous_secret_until: m.previous_secret_until,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

impl Client {
    fn active_model(&self) -> oidc_clients::ActiveModel {
        oidc_clients::ActiveModel {
            id: Set(self.id),
            client_id: Set(self.client_id.clone()),
            name: Set(self.name.clone()),
            kind: Set(self.kind.as_str().to_owned()),
            redirect_uris: Set(to_json(&self.redirect_uris)),
            post_logout_redirect_uris: Set(to_json(&self.post_logout_redirect_uris)),
            companies: Set(self.companies.as_deref().map(to_json)),
            secret_hash: Set(self.secret_hash.clone()),
            previous_secret_hash: Set(self.previous_secret_hash.clone()),
            previous_secret_until: Set(self.previous_secret_until),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
        }
    }
}

/// A signing key as stored: sealed private half, public JWK (JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    pub kid: String,
    pub sealed_private: String,
    pub public_jwk: String,
    pub created_at: DateTime<Utc>,
    /// Published from `created_at`; signs from here on (oidc.md `--publish-for`).
    pub signs_from: DateTime<Utc>,
    /// No longer published after this.
    pub retired_at: Option<DateTime<Utc>>,
}

impl From<oidc_keys::Model> for StoredKey {
    fn from(m: oidc_keys::Model) -> Self {
        StoredKey {
            kid: m.kid,
            sealed_private: m.sealed_private,
            public_jwk: m.public_jwk,
            created_at: m.created_at,
            signs_from: m.signs_from,
            retired_at: m.retired_at,
        }
    }
}

/// An authorization request kept while its user signs in on the pages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub id: Uuid,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// `none` or `login`.
    pub prompt: Option<String>,
    pub max_age: Option<i64>,
    pub require_mfa: bool,
    pub company: Option<String>,
    pub login_hint: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl From<oidc_requests::Model> for AuthRequest {
    fn from(m: oidc_requests::Model) -> Self {
        AuthRequest {
            id: m.id,
            client_id: m.client_id,
            redirect_uri: m.redirect_uri,
            scope: m.scope,
            state: m.state,
            nonce: m.nonce,
            code_challenge: m.code_challenge,
            prompt: m.prompt,
            max_age: m.max_age,
            require_mfa: m.require_mfa,
            company: m.company,
            login_hint: m.login_hint,
            created_at: m.created_at,
            expires_at: m.expires_at,
        }
    }
}

/// Who a code or token was issued to, for whom, and how they signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub session_id: SessionId,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    /// Space-separated `amr` values.
    pub amr: String,
}

/// An authorization code as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRow {
    pub code_hash: String,
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl From<oidc_codes::Model> for CodeRow {
    fn from(m: oidc_codes::Model) -> Self {
        CodeRow {
            code_hash: m.code_hash,
            grant: Grant {
                client_id: m.client_id,
                tenant_id: TenantId(m.tenant_id),
                user_id: UserId(m.user_id),
                session_id: SessionId(m.session_id),
                scope: m.scope,
                auth_time: m.auth_time,
                amr: m.amr,
            },
            redirect_uri: m.redirect_uri,
            code_challenge: m.code_challenge,
            nonce: m.nonce,
            expires_at: m.expires_at,
        }
    }
}

/// What taking a code found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The first use: the code is spent now.
    Fresh(CodeRow),
    /// Spent before (a replay).
    Spent(CodeRow),
    Missing,
}

/// Access or refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// An access or refresh token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    pub id: Uuid,
    pub token_hash: String,
    pub kind: TokenKind,
    pub grant: Grant,
    /// Every token descended from one authorization code.
    pub family: Uuid,
    pub code_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// A refresh token already exchanged.
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<oidc_tokens::Model> for TokenRow {
    type Error = StoreError;

    fn try_from(m: oidc_tokens::Model) -> Result<Self> {
        Ok(TokenRow {
            kind: match m.kind.as_str() {
                "access" => TokenKind::Access,
                "refresh" => TokenKind::Refresh,
                _ => return Err(StoreError::Corrupt(format!("oidc token {}: kind", m.id))),
            },
            id: m.id,
            token_hash: m.token_hash,
            grant: Grant {
                client_id: m.client_id,
                tenant_id: TenantId(m.tenant_id),
                user_id: UserId(m.user_id),
                session_id: SessionId(m.session_id),
                scope: m.scope,
                auth_time: m.auth_time,
                amr: m.amr,
            },
            family: m.family,
            code_hash: m.code_hash,
            created_at: m.created_at,
            expires_at: m.expires_at,
            used_at: m.used_at,
            revoked_at: m.revoked_at,
        })
    }
}

/// The provider's repositories (from [`Store::oidc`]).
#[derive(Clone, Copy)]
pub struct Oidc<'a> {
    inner: &'a Inner,
}

impl Store {
    /// The OpenID Connect provider's repositories.
    pub fn oidc(&self) -> Oidc<'_> {
        Oidc { inner: &self.inner }
    }
}

impl Oidc<'_> {
    // --- clients ---

    pub async fn insert_client<C: ConnectionTrait>(&self, conn: &C, c: &Client) -> Result<()> {
        oidc_clients::Entity::insert(c.active_model())
            .exec_without_returning(conn)
            .await
            .map_err(|e| {
                if StoreError::is_unique_violation(&e) {
                    gatehouse_domain::Error::Conflict("client_id is taken".into()).into()
                } else {
                    StoreError::Db(e)
                }
            })?;
        Ok(())
    }

    pub async fn save_client<C: ConnectionTrait>(&self, conn: &C, c: &Client) -> Result<()> {
        oidc_clients::Entity::update(c.active_model())
            .exec(conn)
            .await?;
        Ok(())
    }

    /// Removes a client; its requests, codes and tokens go with it.
    pub async fn delete_client<C: ConnectionTrait>(
        &self,
        conn: &C,
        client_id: &str,
    ) -> Result<bool> {
        // Explicitly, not only by the foreign keys: SQLite enforces them only with the
        // pragma on, which every connection here sets, but the intent is read here.
        for sql in [
            oidc_tokens::Entity::delete_many()
                .filter(oidc_tokens::Column::ClientId.eq(client_id))
                .exec(conn)
                .await,
            oidc_codes::Entity::delete_many()
                .filter(oidc_codes::Column::ClientId.eq(client_id))
                .exec(conn)
                .await,
            oidc_requests::Entity::delete_many()
                .filter(oidc_requests::Column::ClientId.eq(client_id))
                .exec(conn)
                .await,
        ] {
            sql?;
        }
        let gone = oidc_clients::Entity::delete_many()
            .filter(oidc_clients::Column::ClientId.eq(client_id))
            .exec(conn)
            .await?;
        Ok(gone.rows_affected > 0)
    }

    /// The client registered as `client_id`.
    pub async fn client(&self, client_id: &str) -> Result<Option<Client>> {
        self.client_in(&self.inner.db, client_id).await
    }

    /// The client in `conn` (a write transaction that then changes it).
    pub async fn client_in<C: ConnectionTrait>(
        &self,
        conn: &C,
        client_id: &str,
    ) -> Result<Option<Client>> {
        oidc_clients::Entity::find()
            .filter(oidc_clients::Column::ClientId.eq(client_id))
            .one(conn)
            .await?
            .map(Client::try_from)
            .transpose()
    }

    /// Every client, oldest first.
    pub async fn clients(&self) -> Result<Vec<Client>> {
        oidc_clients::Entity::find()
            .order_by_asc(oidc_clients::Column::CreatedAt)
            .order_by_asc(oidc_clients::Column::ClientId)
            .all(&self.inner.db)
            .await?
            .into_iter()
            .map(Client::try_from)
            .collect()
    }

    // --- signing keys ---

    /// Every key still published (not retired, or retired after `now`), oldest first.
    pub async fn keys(&self, now: DateTime<Utc>) -> Result<Vec<StoredKey>> {
        Ok(oidc_keys::Entity::find()
            .filter(
                sea_orm::Condition::any()
                    .add(oidc_keys::Column::RetiredAt.is_null())
                    .add(oidc_keys::Column::RetiredAt.gt(now)),
            )
            .order_by_asc(oidc_keys::Column::CreatedAt)
            .all(&self.inner.db)
            .await?
            .into_iter()
            .map(StoredKey::from)
            .collect())
    }

    pub async fn insert_key<C: ConnectionTrait>(&self, conn: &C, k: &StoredKey) -> Result<()> {
        oidc_keys::Entity::insert(oidc_keys::ActiveModel {
            kid: Set(k.kid.clone()),
            sealed_private: Set(k.sealed_private.clone()),
            public_jwk: Set(k.public_jwk.clone()),
            created_at: Set(k.created_at),
            signs_from: Set(k.signs_from),
            retired_at: Set(k.retired_at),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(())
    }

    /// Sets when a key stops being published (unless it already stops earlier).
    pub async fn retire_key<C: ConnectionTrait>(
        &self,
        conn: &C,
        kid: &str,
        at: DateTime<Utc>,
    ) -> Result<()> {
        oidc_keys::Entity::update_many()
            .col_expr(oidc_keys::Column::RetiredAt, Expr::value(Some(at)))
            .filter(oidc_keys::Column::Kid.eq(kid))
            .filter(oidc_keys::Column::RetiredAt.is_null())
            .exec(conn)
            .await?;
        Ok(())
    }

    // --- authorization requests ---

    pub async fn insert_request(&self, r: &AuthRequest) -> Result<()> {
        let _turn = self.inner.write_turn().await;
        oidc_requests::Entity::insert(oidc_requests::ActiveModel {
            id: Set(r.id),
            client_id: Set(r.client_id.clone()),
            redirect_uri: Set(r.redirect_uri.clone()),
            scope: Set(r.scope.clone()),
            state: Set(r.state.clone()),
            nonce: Set(r.nonce.clone()),
            code_challenge: Set(r.code_challenge.clone()),
            prompt: Set(r.prompt.clone()),
            max_age: Set(r.max_age),
            require_mfa: Set(r.require_mfa),
            company: Set(r.company.clone()),
            login_hint: Set(r.login_hint.clone()),
            created_at: Set(r.created_at),
            expires_at: Set(r.expires_at),
        })
        .exec_without_returning(&self.inner.db)
        .await?;
        Ok(())
    }

    /// The request, while it has not expired.
    pub async fn request(&self, id: Uuid, now: DateTime<Utc>) -> Result<Option<AuthRequest>> {
        Ok(oidc_requests::Entity::find_by_id(id)
            .filter(oidc_requests::Column::ExpiresAt.gt(now))
            .one(&self.inner.db)
            .await?
            .map(AuthRequest::from))
    }

    /// Ends a request (answered).
    pub async fn delete_request<C: ConnectionTrait>(&self, conn: &C, id: Uuid) -> Result<()> {
        oidc_requests::Entity::delete_many()
            .filter(oidc_requests::Column::Id.eq(id))
            .exec(conn)
            .await?;
        Ok(())
    }

    // --- codes ---

    pub async fn insert_code<C: ConnectionTrait>(
        &self,
        conn: &C,
        c: &CodeRow,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let g = &c.grant;
        oidc_codes::Entity::insert(oidc_codes::ActiveModel {
            code_hash: Set(c.code_hash.clone()),
            client_id: Set(g.client_id.clone()),
            tenant_id: Set(g.tenant_id.0),
            user_id: Set(g.user_id.0),
            session_id: Set(g.session_id.0),
            redirect_uri: Set(c.redirect_uri.clone()),
            code_challenge: Set(c.code_challenge.clone()),
            nonce: Set(c.nonce.clone()),
            scope: Set(g.scope.clone()),
            auth_time: Set(g.auth_time),
            amr: Set(g.amr.clone()),
            created_at: Set(now),
            expires_at: Set(c.expires_at),
            used_at: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(())
    }

    /// The code whose hash is `code_hash`, spent or not.
    pub async fn code(&self, code_hash: &str) -> Result<Option<CodeRow>> {
        Ok(oidc_codes::Entity::find_by_id(code_hash.to_owned())
            .one(&self.inner.db)
            .await?
            .map(CodeRow::from))
    }

    /// Spends a code: of two concurrent exchanges, exactly one finds it fresh.
    pub async fn take_code<C: ConnectionTrait>(
        &self,
        conn: &C,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Taken> {
        let spent = oidc_codes::Entity::update_many()
            .col_expr(oidc_codes::Column::UsedAt, Expr::value(Some(now)))
            .filter(oidc_codes::Column::CodeHash.eq(code_hash))
            .filter(oidc_codes::Column::UsedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected;
        let row = oidc_codes::Entity::find_by_id(code_hash.to_owned())
            .one(conn)
            .await?;
        Ok(match (row, spent) {
            (Some(r), 1) => Taken::Fresh(r.into()),
            (Some(r), _) => Taken::Spent(r.into()),
            (None, _) => Taken::Missing,
        })
    }

    /// Deletes what nobody can use any more: requests and codes past their life, tokens a
    /// day past theirs (a spent refresh token is kept while its family may live, so that
    /// its reuse is still recognised). Answers how many rows went.
    pub async fn sweep(&self, now: DateTime<Utc>) -> Result<u64> {
        let _turn = self.inner.write_turn().await;
        let db = &self.inner.db;
        let requests = oidc_requests::Entity::delete_many()
            .filter(oidc_requests::Column::ExpiresAt.lte(now))
            .exec(db)
            .await?;
        let codes = oidc_codes::Entity::delete_many()
            .filter(oidc_codes::Column::ExpiresAt.lt(now))
            .exec(db)
            .await?;
        let tokens = oidc_tokens::Entity::delete_many()
            .filter(oidc_tokens::Column::ExpiresAt.lt(now - chrono::Duration::days(1)))
            .exec(db)
            .await?;
        Ok(requests.rows_affected + codes.rows_affected + tokens.rows_affected)
    }

    // --- tokens ---

    #[allow(clippy::too_many_arguments)]
    pub async fn insert_token<C: ConnectionTrait>(
        &self,
        conn: &C,
        (kind, token_hash): (TokenKind, &str),
        grant: &Grant,
        (family, code_hash): (Uuid, Option<&str>),
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()> {
        oidc_tokens::Entity::insert(oidc_tokens::ActiveModel {
            id: Set(Uuid::new_v4()),
            token_hash: Set(token_hash.to_owned()),
            kind: Set(kind.as_str().to_owned()),
            client_id: Set(grant.client_id.clone()),
            tenant_id: Set(grant.tenant_id.0),
            user_id: Set(grant.user_id.0),
            session_id: Set(grant.session_id.0),
            family: Set(family),
            code_hash: Set(code_hash.map(str::to_owned)),
            scope: Set(grant.scope.clone()),
            auth_time: Set(grant.auth_time),
            amr: Set(grant.amr.clone()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            used_at: Set(None),
            revoked_at: Set(None),
        })
        .exec_without_returning(conn)
        .await?;
        Ok(())
    }

    /// The token whose hash is `token_hash`, whatever its state.
    pub async fn token(&self, token_hash: &str) -> Result<Option<TokenRow>> {
        oidc_tokens::Entity::find()
            .filter(oidc_tokens::Column::TokenHash.eq(token_hash))
            .one(&self.inner.db)
            .await?
            .map(TokenRow::try_from)
            .transpose()
    }

    /// Spends a refresh token: of two concurrent uses, exactly one gets `true`.
    pub async fn spend_refresh<C: ConnectionTrait>(
        &self,
        conn: &C,
        (tenant, id): (TenantId, Uuid),
        now: DateTime<Utc>,
    ) -> Result<bool> {
        Ok(oidc_tokens::Entity::update_many()
            .col_expr(oidc_tokens::Column::UsedAt, Expr::value(Some(now)))
            .filter(oidc_tokens::Column::TenantId.eq(tenant.0))
            .filter(oidc_tokens::Column::Id.eq(id))
            .filter(oidc_tokens::Column::UsedAt.is_null())
            .filter(oidc_tokens::Column::RevokedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected
            == 1)
    }

    /// Revokes the live tokens of one family (all issued from one code).
    pub async fn revoke_family<C: ConnectionTrait>(
        &self,
        conn: &C,
        (tenant, family): (TenantId, Uuid),
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.revoke_where(conn, tenant, oidc_tokens::Column::Family.eq(family), now)
            .await
    }

    /// Revokes what a code issued (its second use).
    pub async fn revoke_issued_by_code<C: ConnectionTrait>(
        &self,
        conn: &C,
        (tenant, code_hash): (TenantId, &str),
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.revoke_where(
            conn,
            tenant,
            oidc_tokens::Column::CodeHash.eq(code_hash),
            now,
        )
        .await
    }

    /// Revokes every token issued in a browser session of one practice (sign-out).
    pub async fn revoke_session_tokens<C: ConnectionTrait>(
        &self,
        conn: &C,
        (tenant, session): (TenantId, SessionId),
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.revoke_where(
            conn,
            tenant,
            oidc_tokens::Column::SessionId.eq(session.0),
            now,
        )
        .await
    }

    /// Revokes one token.
    pub async fn revoke_token<C: ConnectionTrait>(
        &self,
        conn: &C,
        (tenant, id): (TenantId, Uuid),
        now: DateTime<Utc>,
    ) -> Result<u64> {
        self.revoke_where(conn, tenant, oidc_tokens::Column::Id.eq(id), now)
            .await
    }

    /// Revokes the live tokens of one practice that `which` names: every revocation is
    /// bounded by the practice of the token, code or session it starts from.
    async fn revoke_where<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: TenantId,
        which: sea_orm::sea_query::SimpleExpr,
        now: DateTime<Utc>,
    ) -> Result<u64> {
        Ok(oidc_tokens::Entity::update_many()
            .col_expr(oidc_tokens::Column::RevokedAt, Expr::value(Some(now)))
            .filter(oidc_tokens::Column::TenantId.eq(tenant.0))
            .filter(which)
            .filter(oidc_tokens::Column::RevokedAt.is_null())
            .exec(conn)
            .await?
            .rows_affected)
    }
}
