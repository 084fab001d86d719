//! Identifiers that can only be built by parsing: once a value exists it is valid.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new random id.
            pub fn new_random() -> Self {
                Self(Uuid::new_v4())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// The internal id of a tenant (practice or the operator).
    TenantId
);
uuid_id!(
    /// The internal id of a user.
    UserId
);
uuid_id!(
    /// The id of a group.
    GroupId
);
uuid_id!(
    /// The id of a sign-in flow; knowing it lets a client continue that flow.
    FlowId
);
uuid_id!(
    /// The id of a session (not its token).
    SessionId
);

/// A practice's company id: `[a-z0-9-]{2,40}` (T1). Input is trimmed and lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct CompanyId(String);

impl CompanyId {
    /// Parses a company id.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim().to_ascii_lowercase();
        let ok = (2..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s))
        } else {
            Err(Error::field(
                "company",
                "company id must be 2 to 40 characters of a-z, 0-9 and '-'",
            ))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CompanyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user id as people type it (T3): unique within a tenant, compared case-insensitively.
///
/// 1 to 64 characters of letters, digits and `. _ @ + -`. A username may not have the
/// shape of a UUID, because paths accept either a user's UUID or its username.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Parses a username, keeping the case it was given in for display.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        if s.is_empty() || s.chars().count() > 64 {
            return Err(Error::field(
                "username",
                "username must be 1 to 64 characters",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'))
        {
            return Err(Error::field(
                "username",
                "username may contain only letters, digits and . _ @ + -",
            ));
        }
        if Uuid::parse_str(s).is_ok() {
            return Err(Error::field(
                "username",
                "username may not look like a UUID",
            ));
        }
        Ok(Self(s.to_owned()))
    }

    /// The username as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form used for uniqueness and lookup.
    pub fn lower(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, syntactically checked; the domain is lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Parses an email address.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let bad = || Error::field("email", "not a valid email address");
        if s.len() > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || local.contains('@') {
            return Err(bad());
        }
        let domain = domain.to_ascii_lowercase();
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad());
        }
        Ok(Self(format!("{local}@{domain}")))
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Masked for display: `j•••@example.com`.
    pub fn masked(&self) -> String {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or(("", &self.0));
        let first: String = local.chars().take(1).collect();
        format!("{first}•••@{domain}")
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A mobile phone number in E.164 form. Numbers without a country code are read as US numbers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct PhoneE164(String);

impl PhoneE164 {
    /// Parses and normalises a phone number to E.164.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let bad = || {
            Error::field(
                "phone",
                "not a valid phone number (use E.164, e.g. +15551234567)",
            )
        };
        let s = input.trim();
        if s.is_empty() || s.len() > 32 {
            return Err(bad());
        }
        let n = phonenumber::parse(Some(phonenumber::country::Id::US), s).map_err(|_| bad())?;
        let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
        // Numbers the metadata does not know as assigned (fictional 555 numbers, new ranges)
        // are kept if their length is plausible: a number is proven by a code sent to it
        // (M10) before it is ever used, which is the real check.
        let digits = e164.chars().filter(char::is_ascii_digit).count();
        if !phonenumber::is_valid(&n) && !(8..=15).contains(&digits) {
            return Err(bad());
        }
        Ok(Self(e164))
    }

    /// The number in E.164.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The country calling code (`1` for +1 numbers), from the numbering plan.
    pub fn calling_code(&self) -> Option<String> {
        phonenumber::parse(None, &self.0)
            .ok()
            .map(|n| n.country().code().to_string())
    }

    /// Masked for display: `•••-•••-1234`.
    pub fn masked(&self) -> String {
        let digits: Vec<char> = self.0.chars().filter(|c| c.is_ascii_digit()).collect();
        let tail: String = digits[digits.len().saturating_sub(4)..].iter().collect();
        format!("•••-•••-{tail}")
    }
}

impl fmt::Display for PhoneE164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t1_company_id_accepts_slugs_and_lowercases() {
        assert_eq!(
            CompanyId::parse(" Demo-Clinic ").map(|c| c.0),
            Ok("demo-clinic".into())
        );
        assert!(CompanyId::parse("a").is_err());
        assert!(CompanyId::parse(&"a".repeat(41)).is_err());
        assert!(CompanyId::parse("demo_clinic").is_err());
        assert!(CompanyId::parse("démo").is_err());
    }

    #[test]
    fn t3_username_is_case_insensitive_and_not_uuid_shaped() {
        let u = Username::parse("Jane.Doe").map_err(|e| e.to_string());
        assert_eq!(u.as_ref().map(|u| u.lower()), Ok("jane.doe".into()));
        assert_eq!(u.map(|u| u.as_str().to_owned()), Ok("Jane.Doe".into()));
        assert!(Username::parse("").is_err());
        assert!(Username::parse("has space").is_err());
        assert!(Username::parse("8d3e7a1c-5f7b-4a39-9a53-4d9a3c1e2f10").is_err());
    }

    #[test]
    fn email_is_parsed_and_masked() {
        let e = EmailAddress::parse("Jane@Example.COM");
        assert_eq!(e.as_ref().map(|e| e.as_str()), Ok("Jane@example.com"));
        assert_eq!(e.map(|e| e.masked()), Ok("J•••@example.com".into()));
        for bad in [
            "",
            "jane",
            "jane@",
            "@x.com",
            "jane@localhost",
            "a b@x.com",
            "j@-x.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phone_is_normalised_to_e164_and_masked() {
        let p = PhoneE164::parse("(202) 555-0147");
        assert_eq!(p.as_ref().map(|p| p.as_str()), Ok("+12025550147"));
        assert_eq!(p.map(|p| p.masked()), Ok("•••-•••-0147".into()));
        assert_eq!(
            PhoneE164::parse("+44 20 7946 0958").map(|p| p.0),
            Ok("+442079460958".into())
        );
        assert_eq!(
            PhoneE164::parse("+1 555 555 0100").map(|p| p.0),
            Ok("+15555550100".into())
        );
        assert!(PhoneE164::parse("12").is_err());
        assert!(PhoneE164::parse("+1 555").is_err());
        assert!(PhoneE164::parse("not a number").is_err());
    }
}
