//! The signing keys (oidc.md "Keys"): the first made at start, sealed with the secret key;
//! `gatehouse keys rotate` adds one that is published at once and signs after
//! `--publish-for`. Each process keeps the keys it loaded for a minute, so a rotation made
//! by another process is seen within one.

use super::Oidc;
use crate::Result;
use chrono::{DateTime, Duration, Utc};
use gatehouse_domain::oidc::ID_TOKEN_SECONDS;
use gatehouse_domain::oidc::keys::{Jwk, SigningKey};
use gatehouse_store::StoreError;
use gatehouse_store::oidc::StoredKey;
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// How long a process trusts the keys it loaded.
const RELOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// The keys as loaded: the one that signs now, and every published public key.
#[derive(Debug)]
pub(crate) struct Loaded {
    at: Instant,
    pub(crate) signer: Arc<SigningKey>,
    pub(crate) published: Vec<Jwk>,
}

/// This process's copy of the signing keys.
#[derive(Debug, Default)]
pub struct KeyCache {
    loaded: RwLock<Option<Arc<Loaded>>>,
}

fn context(kid: &str) -> Vec<u8> {
    format!("oidc-signing-key:{kid}").into_bytes()
}

impl KeyCache {
    fn fresh(&self) -> Option<Arc<Loaded>> {
        let guard = self.loaded.read().ok()?;
        guard
            .as_ref()
            .filter(|l| l.at.elapsed() < RELOAD_AFTER)
            .cloned()
    }

    fn keep(&self, l: Arc<Loaded>) {
        if let Ok(mut g) = self.loaded.write() {
            *g = Some(l);
        }
    }

    fn forget(&self) {
        if let Ok(mut g) = self.loaded.write() {
            *g = None;
        }
    }
}

impl Oidc<'_> {
    /// The keys, loaded at most a minute ago; the first key is made if there is none.
    pub(crate) async fn loaded(&self) -> Result<Arc<Loaded>> {
        if let Some(l) = self.keys.fresh() {
            return Ok(l);
        }
        let now = self.store.clock().now();
        let mut stored = self.store.oidc().keys(now).await?;
        if stored.is_empty() {
            stored.push(self.add_key(now, now).await?);
        }
        // The newest key whose signing time has come; the oldest if none has yet.
        let signing = stored
            .iter()
            .filter(|k| k.signs_from <= now)
            .max_by_key(|k| (k.signs_from, k.created_at))
            .or_else(|| stored.first())
            .ok_or_else(|| StoreError::Internal("no signing key".into()))?;
        let der = self
            .store
            .config()
            .keyring
            .open(&context(&signing.kid), &signing.sealed_private)
            .map_err(|e| StoreError::Corrupt(format!("oidc key {}: {e}", signing.kid)))?;
        let signer = SigningKey::from_pkcs8(&der)
            .map_err(|e| StoreError::Corrupt(format!("oidc key {}: {e}", signing.kid)))?;
        let published = stored
            .iter()
            .map(|k| {
                serde_json::from_str::<Jwk>(&k.public_jwk)
                    .map_err(|_| StoreError::Corrupt(format!("oidc key {}: jwk", k.kid)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let l = Arc::new(Loaded {
            at: Instant::now(),
            signer: Arc::new(signer),
            published,
        });
        self.keys.keep(l.clone());
        Ok(l)
    }

    async fn add_key(&self, now: DateTime<Utc>, signs_from: DateTime<Utc>) -> Result<StoredKey> {
        let key =
            SigningKey::generate().map_err(|e| StoreError::Internal(format!("oidc key: {e}")))?;
        let sealed = self
            .store
            .config()
            .keyring
            .current()
            .seal(&context(key.kid()), key.pkcs8());
        let stored = StoredKey {
            kid: key.kid().to_owned(),
            sealed_private: sealed,
            public_jwk: serde_json::to_string(key.jwk())
                .map_err(|e| StoreError::Internal(format!("oidc key: {e}")))?,
            created_at: now,
            signs_from,
            retired_at: None,
        };
        let txn = self.store.begin_write().await?;
        self.store.oidc().insert_key(&*txn, &stored).await?;
        txn.commit().await?;
        tracing::info!(kid = %stored.kid, signs_from = %signs_from, "a new OpenID Connect signing key");
        Ok(stored)
    }

    /// Makes the first signing key if there is none (at start, so that the JWKS a client
    /// fetches first already holds the key of its first token).
    pub async fn ensure_key(&self) -> Result<()> {
        self.loaded().await.map(|_| ())
    }

    /// `gatehouse keys rotate`: a new key, published now and signing from
    /// `now + publish_for`; the keys before it stop signing then and stay published until
    /// the last ID token they signed has expired. Answers the new key's id.
    pub async fn rotate_key(&self, publish_for: Duration) -> Result<String> {
        let now = self.store.clock().now();
        let signs_from = now + publish_for;
        let before = self.store.oidc().keys(now).await?;
        let new = self.add_key(now, signs_from).await?;
        let txn = self.store.begin_write().await?;
        for k in before {
            self.store
                .oidc()
                .retire_key(
                    &*txn,
                    &k.kid,
                    signs_from + Duration::seconds(ID_TOKEN_SECONDS + 60),
                )
                .await?;
        }
        txn.commit().await?;
        self.keys.forget();
        Ok(new.kid)
    }

    /// Deletes the requests, codes and tokens nobody can use any more (run every few
    /// minutes by `serve`); answers how many rows went.
    pub async fn sweep(&self) -> Result<u64> {
        self.store.oidc().sweep(self.store.clock().now()).await
    }

    /// `GET /oauth2/jwks`: every published public key.
    pub async fn jwks(&self) -> Result<Vec<Jwk>> {
        Ok(self.loaded().await?.published.clone())
    }
}
