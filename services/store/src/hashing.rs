//! Argon2id on a bounded pool (P1): at most one hash per core runs at a time, on blocking
//! threads, never on the async workers, so hashing cannot starve session checks.

use gatehouse_domain::password::{HashParams, Verified, hash_password, verify_password};
use secrecy::SecretString;
use std::sync::Arc;
use tokio::sync::Semaphore;

use crate::error::StoreError;

/// The bounded Argon2id executor.
#[derive(Debug, Clone)]
pub struct PasswordPool {
    permits: Arc<Semaphore>,
    params: HashParams,
}

impl PasswordPool {
    /// A pool running at most `workers` computations at once.
    pub fn new(params: HashParams, workers: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(workers.max(1))),
            params,
        }
    }

    /// The parameters new hashes get.
    pub fn params(&self) -> HashParams {
        self.params
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(HashParams) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Internal("password pool closed".into()))?;
        let params = self.params;
        tokio::task::spawn_blocking(move || f(params))
            .await
            .map_err(|e| StoreError::Internal(format!("password task failed: {e}")))
    }

    /// Verifies a password against a stored hash.
    pub async fn verify(
        &self,
        stored: String,
        password: SecretString,
    ) -> Result<Verified, StoreError> {
        self.run(move |p| verify_password(p, &stored, &password))
            .await
    }

    /// Hashes a new password.
    pub async fn hash(&self, password: SecretString) -> Result<String, StoreError> {
        self.run(move |p| hash_password(p, &password))
            .await?
            .map_err(|e| StoreError::Internal(e.to_string()))
    }
}
