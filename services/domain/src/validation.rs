//! Field-level validation errors, reported all at once.

use serde::Serialize;

/// One invalid field: which, why, and (for policies) which rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl FieldError {
    /// An error on `field` with a human message.
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
            rule: None,
        }
    }

    /// An error naming the broken rule.
    pub fn rule(field: &str, rule: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
            rule: Some(rule.to_owned()),
        }
    }

    /// The same error under another field name (for nested objects).
    pub fn prefixed(mut self, prefix: &str) -> Self {
        self.field = format!("{prefix}.{}", self.field);
        self
    }
}

/// A field an adapter has already read into its type, or why it could not: kept with the
/// request's other fields, so that one answer names every bad field.
pub type Given<T> = Result<T, FieldError>;

/// Collects field errors from several parses and fails once with all of them.
#[derive(Debug, Default)]
pub struct Collector {
    errors: Vec<FieldError>,
}

impl Collector {
    /// A fresh collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps the value or records the errors of a parse.
    pub fn take<T>(&mut self, result: Result<T, crate::Error>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(crate::Error::Validation(errs)) | Err(crate::Error::PasswordPolicy(errs)) => {
                self.errors.extend(errs);
                None
            }
            Err(other) => {
                self.errors
                    .push(FieldError::new("request", other.to_string()));
                None
            }
        }
    }

    /// Keeps the value of a field read at the edge, or records why it is not one.
    pub fn given<T>(&mut self, given: Given<T>) -> Option<T> {
        match given {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Records one error.
    pub fn push(&mut self, e: FieldError) {
        self.errors.push(e);
    }

    /// Ok when nothing was recorded.
    pub fn finish(self) -> Result<(), crate::Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(crate::Error::Validation(self.errors))
        }
    }
}
