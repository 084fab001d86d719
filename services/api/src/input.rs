//! Request fields read leniently, then parsed: a field whose value is wrong (an unknown
//! name, a wrong type) does not stop the body's other fields from being read, so one
//! 422 names every bad field (api.md), and the handler hands the use case typed values.
//! The OpenAPI document lists each field's values (`#[schema(value_type = ...)]`).

use crate::error::ApiError;
use gatehouse_domain::FieldError;
use gatehouse_domain::validation::Given;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

/// A request field of type `T`, or why its value is not one.
#[derive(Debug, Clone)]
pub struct Parsed<T>(Result<T, String>);

impl<'de, T: DeserializeOwned> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(Parsed(T::deserialize(value).map_err(|e| e.to_string())))
    }
}

impl<T> Parsed<T> {
    /// The value, or a 422 naming `field`.
    pub fn value(self, field: &str) -> Result<T, ApiError> {
        self.0
            .map_err(|m| ApiError::validation(vec![FieldError::new(field, m)]))
    }
}

impl<T> Parsed<T> {
    /// The value, or the error of `field`, for a use case that checks it together with
    /// the request's other fields.
    pub fn given(self, field: &str) -> Given<T> {
        self.0.map_err(|m| FieldError::new(field, m))
    }
}

/// Two fields' values, or a 422 naming every bad one of them.
pub fn both<A, B>(
    (a, field_a): (Parsed<A>, &str),
    (b, field_b): (Parsed<B>, &str),
) -> Result<(A, B), ApiError> {
    match (a.0, b.0) {
        (Ok(a), Ok(b)) => Ok((a, b)),
        (a, b) => {
            let errors = [(a.err(), field_a), (b.err(), field_b)]
                .into_iter()
                .filter_map(|(m, f)| m.map(|m| FieldError::new(f, m)))
                .collect();
            Err(ApiError::validation(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use gatehouse_domain::mfa::{Enrollment, UserMethod};
    use serde_json::json;

    #[derive(Deserialize)]
    struct Body {
        method: Parsed<UserMethod>,
        enrollment: Parsed<Enrollment>,
    }

    fn fields(e: &ApiError) -> Vec<String> {
        e.problem().errors.iter().map(|f| f.field.clone()).collect()
    }

    /// M3: a body with two wrong names is read whole, and the answer names both.
    #[test]
    fn m3_every_bad_field_is_named_at_once() {
        let b: Body = serde_json::from_value(json!({"method": "fax", "enrollment": 7})).unwrap();
        let e = both((b.method, "method"), (b.enrollment, "enrollment")).unwrap_err();
        assert_eq!(fields(&e), ["method", "enrollment"]);
        assert_eq!(e.code(), "validation_failed");
        let first = &e.problem().errors[0];
        assert!(first.message.contains("fax"), "{first:?}");

        let b: Body =
            serde_json::from_value(json!({"method": "sms", "enrollment": "require"})).unwrap();
        let ok = both((b.method, "method"), (b.enrollment, "enrollment")).unwrap();
        assert_eq!(ok, (UserMethod::Sms, Enrollment::Require));

        let b: Body =
            serde_json::from_value(json!({"method": "sms", "enrollment": "soon"})).unwrap();
        assert_eq!(b.method.value("method").unwrap(), UserMethod::Sms);
    }
}
