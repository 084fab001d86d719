//! The store's error: a domain refusal, or a failure of the machinery underneath.

use gatehouse_domain::Error as DomainError;
use sea_orm::{DbErr, SqlErr};

/// What went wrong in a store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A rule refused the request; the API maps it to a problem code.
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error")]
    Db(#[source] DbErr),
    /// A stored value could not be read back (corrupt or from an unknown future version).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    #[error("internal error: {0}")]
    Internal(String),
    /// A service the store needs (Redis) cannot be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

impl From<DbErr> for StoreError {
    fn from(e: DbErr) -> Self {
        StoreError::Db(e)
    }
}

impl StoreError {
    /// Whether a database error is a unique-constraint violation.
    pub fn is_unique_violation(e: &DbErr) -> bool {
        matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
    }
}
