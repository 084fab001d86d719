//! Parsing of query-string values. Free text from a URL is checked before it reaches a
//! query: no control characters (PostgreSQL refuses NUL outright), bounded length.

use gatehouse_domain::FieldError;
use gatehouse_domain::ids::{CompanyId, Username};

/// Optional free text: trimmed, empty means absent, at most `max` characters.
pub fn text(field: &str, v: Option<&str>, max: usize) -> Result<Option<String>, FieldError> {
    let Some(v) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if v.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    if v.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(Some(v.to_owned()))
}

/// `?limit=`: 1 to 500, default 50 (api.md).
pub fn limit(requested: Option<u64>) -> u64 {
    requested.unwrap_or(50).clamp(1, 500)
}

/// `true`/`false` (or 1/0); empty means absent.
pub fn flag(field: &str, v: Option<&str>) -> Result<Option<bool>, FieldError> {
    match v.map(str::trim) {
        None | Some("") => Ok(None),
        Some("true") | Some("1") => Ok(Some(true)),
        Some("false") | Some("0") => Ok(Some(false)),
        Some(_) => Err(FieldError::new(field, "must be true or false")),
    }
}

/// A dotted audit action name. Checked by shape, not against today's list: new actions
/// may be added, and filtering on one this server does not know yet finds nothing.
pub fn action(v: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(a) = text("action", v, 64)? else {
        return Ok(None);
    };
    let shaped = a
        .split('.')
        .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    if shaped && a.contains('.') {
        Ok(Some(a))
    } else {
        Err(FieldError::new(
            "action",
            "must be a dotted action name such as signin.failed",
        ))
    }
}

fn not_a_cursor() -> FieldError {
    FieldError::new("cursor", "not a cursor of this list")
}

/// The cursor of the user list: the last username of the previous page.
pub fn user_cursor(v: Option<&str>) -> Result<Option<String>, FieldError> {
    v.filter(|s| !s.is_empty())
        .map(|c| {
            Username::parse(c)
                .map(|u| u.lower())
                .map_err(|_| not_a_cursor())
        })
        .transpose()
}

/// The cursor of the group list: the last group name of the previous page, lower-cased.
/// Lower-casing may lengthen a name, so the bound is looser than a name's own.
pub fn group_cursor(v: Option<&str>) -> Result<Option<String>, FieldError> {
    let max = 4 * gatehouse_domain::names::GROUP_NAME_MAX;
    v.filter(|s| !s.is_empty())
        .map(|c| {
            if c.chars().count() > max || c.chars().any(char::is_control) {
                Err(not_a_cursor())
            } else {
                Ok(c.to_owned())
            }
        })
        .transpose()
}

/// The cursor of the tenant list: the last company id of the previous page.
pub fn company_cursor(v: Option<&str>) -> Result<Option<String>, FieldError> {
    v.filter(|s| !s.is_empty())
        .map(|c| {
            CompanyId::parse(c)
                .map(|c| c.to_string())
                .map_err(|_| not_a_cursor())
        })
        .transpose()
}

/// The cursor of the audit list: a sequence number.
pub fn seq_cursor(v: Option<&str>) -> Result<Option<String>, FieldError> {
    v.filter(|s| !s.is_empty())
        .map(|c| {
            c.parse::<i64>()
                .map(|n| n.to_string())
                .map_err(|_| not_a_cursor())
        })
        .transpose()
}

/// The cursor of a list paged by record id (deliveries, support's user search): the id
/// of the previous page's last item.
pub fn id_cursor(v: Option<&str>) -> Result<Option<uuid::Uuid>, FieldError> {
    v.filter(|s| !s.is_empty())
        .map(|c| uuid::Uuid::parse_str(c).map_err(|_| not_a_cursor()))
        .transpose()
}

/// Collects the errors of several parses and fails with all of them.
#[derive(Default)]
pub struct Errors(Vec<FieldError>);

impl Errors {
    /// Keeps a parsed value, or records its error and yields the default.
    pub fn take<T: Default>(&mut self, r: Result<T, FieldError>) -> T {
        r.unwrap_or_else(|e| {
            self.0.push(e);
            T::default()
        })
    }

    /// Ok when nothing was recorded.
    pub fn finish(self) -> Result<(), crate::error::ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(crate::error::ApiError::validation(self.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_refuses_control_characters_and_overlong_values() {
        assert_eq!(text("q", Some("  bob "), 10), Ok(Some("bob".into())));
        assert_eq!(text("q", Some(""), 10), Ok(None));
        assert!(text("q", Some("bob\0"), 10).is_err());
        assert!(text("q", Some("abcdefghijk"), 10).is_err());
    }

    #[test]
    fn cursors_and_actions_are_parsed_by_shape() {
        assert_eq!(user_cursor(Some("Jane.Doe")), Ok(Some("jane.doe".into())));
        assert!(user_cursor(Some("\0")).is_err());
        assert!(company_cursor(Some("Not Valid")).is_err());
        assert_eq!(
            group_cursor(Some("front desk")),
            Ok(Some("front desk".into()))
        );
        assert!(group_cursor(Some("front\0desk")).is_err());
        assert!(group_cursor(Some(&"x".repeat(401))).is_err());
        assert!(seq_cursor(Some("x")).is_err());
        assert!(id_cursor(Some("x")).is_err());
        assert_eq!(id_cursor(Some("")), Ok(None));
        assert_eq!(
            action(Some("signin.failed")),
            Ok(Some("signin.failed".into()))
        );
        assert!(action(Some("signin.failed\0")).is_err());
        assert_eq!(
            action(Some("no.such_action")),
            Ok(Some("no.such_action".into()))
        );
        assert!(action(Some("Signin Failed")).is_err());
        assert_eq!(
            flag("active", Some("maybe")).map_err(|e| e.field),
            Err("active".into())
        );
    }
}
