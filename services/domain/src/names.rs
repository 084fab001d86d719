//! People's names and free-text labels.

use crate::Error;

/// Parses a person's first or last name: trimmed, 1 to 100 characters, no control characters.
pub fn person_name(field: &str, input: &str) -> Result<String, Error> {
    let s = input.trim();
    if s.is_empty() || s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(Error::field(field, "must be 1 to 100 printable characters"));
    }
    Ok(s.to_owned())
}

/// Parses a display name (practice or group): trimmed, 1 to 200 characters.
pub fn display_name(field: &str, input: &str) -> Result<String, Error> {
    let s = input.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(Error::field(field, "must be 1 to 200 printable characters"));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(person_name("first_name", "  Ada "), Ok("Ada".into()));
        assert!(person_name("first_name", "   ").is_err());
        assert!(person_name("first_name", &"x".repeat(101)).is_err());
        assert!(display_name("name", "Clinic\u{0}").is_err());
    }
}
