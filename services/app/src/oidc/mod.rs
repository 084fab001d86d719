//! The OpenID Connect provider (I1, I2): client registration by support admins, the
//! authorization request and its answer once the user has signed in on the pages, the
//! token endpoint (codes, refresh with rotation and reuse detection), userinfo,
//! revocation, introspection and RP-initiated logout.
//!
//! The JSON API serves the machine endpoints and the client registry, the pages serve
//! `/oauth2/authorize` and `/oauth2/logout`; both call this module, with the issuer
//! (GATEHOUSE_PUBLIC_URL's origin) they serve under.

mod authorize;
mod clients;
mod keys;
mod tokens;

pub use authorize::{AuthorizeError, AuthorizeParams, LogoutParams, Pending};
pub use clients::{ClientInput, ClientPatch, IssuedClient};
pub use gatehouse_domain::oidc::{ErrorCode, OAuthError};
pub use gatehouse_store::oidc::{AuthRequest, Client};
pub use keys::KeyCache;
pub use tokens::{ClientAuth, Introspection, TokenRequest, TokenResponse};

use gatehouse_domain::session::{hash_token, new_token};
use gatehouse_store::Store;
use secrecy::SecretString;

/// What an OAuth endpoint answers instead: a refusal of the protocol, or a failure.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error(transparent)]
    OAuth(#[from] OAuthError),
    #[error(transparent)]
    Failed(#[from] crate::Error),
}

/// The provider's use cases (from [`crate::App::oidc`]).
#[derive(Debug, Clone, Copy)]
pub struct Oidc<'a> {
    pub(crate) store: &'a Store,
    pub(crate) keys: &'a KeyCache,
    /// The issuer: the public origin, as discovery and every token state it.
    pub(crate) issuer: &'a str,
}

impl Oidc<'_> {
    /// The issuer these use cases answer for.
    pub fn issuer(&self) -> &str {
        self.issuer
    }
}

/// A new 256-bit secret (code, token, client secret) and its stored hash.
pub(crate) fn new_secret() -> (SecretString, String) {
    let t = new_token(&mut rand::rngs::OsRng);
    (t.token, t.hash)
}

/// The stored hash of a presented secret.
pub(crate) fn hash_of(secret: &str) -> String {
    hash_token(&SecretString::from(secret.to_owned()))
}
