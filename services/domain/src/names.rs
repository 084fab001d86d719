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

/// The longest group name, in characters (T5).
pub const GROUP_NAME_MAX: usize = 100;

/// A group's name (T5): trimmed, 1 to 100 characters, no control characters; unique
/// within a practice regardless of case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupName(String);

impl GroupName {
    /// Parses a group name, keeping the case it was given in for display.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        if s.is_empty() || s.chars().count() > GROUP_NAME_MAX || s.chars().any(char::is_control) {
            return Err(Error::field(
                "name",
                format!("must be 1 to {GROUP_NAME_MAX} printable characters"),
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form compared for uniqueness and ordering.
    pub fn lower(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
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

    #[test]
    fn t5_group_names_are_trimmed_bounded_printable_and_compared_without_case() {
        let g = GroupName::parse("  Front Desk ").unwrap();
        assert_eq!(g.as_str(), "Front Desk");
        assert_eq!(g.lower(), "front desk");
        assert_eq!(GroupName::parse("ÉQUIPE").unwrap().lower(), "équipe");
        assert!(GroupName::parse(&"x".repeat(100)).is_ok());
        assert!(GroupName::parse(&"é".repeat(101)).is_err());
        assert!(GroupName::parse("   ").is_err());
        assert!(GroupName::parse("Night\nshift").is_err());
        assert!(GroupName::parse("Tab\tbed").is_err());
        let e = GroupName::parse("").unwrap_err();
        assert_eq!(
            e,
            Error::field("name", "must be 1 to 100 printable characters")
        );
    }
}
