//! What the vendor's support staff type to look across practices (S1): a user search
//! term and a destination whose deliveries they want to see. Both are parsed once here,
//! so the store only ever queries with a normalised value.

use crate::Error;
use crate::ids::{EmailAddress, PhoneE164};

/// A search for users by username, email or phone: at least three characters, compared
/// case-insensitively; read as a phone number as well when it looks like one.
///
/// A term matches where an index can find it (finding 13 of the hardening review: a
/// search that matched anywhere in a value scanned every user of every practice): the
/// start of a username, an email address from its local part and `@` on, a whole phone
/// number, or a number's last [`Self::MIN_TAIL_DIGITS`] or more digits. Support staff type the beginning of a name,
/// or the end of a number a caller reads out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLookup {
    text: String,
    phone: Option<PhoneE164>,
    digits: Option<String>,
}

/// Characters a typed phone number may contain besides digits.
fn phone_punctuation(c: char) -> bool {
    matches!(c, '+' | '-' | '(' | ')' | '.' | ' ')
}

impl UserLookup {
    /// Fewer characters would match a large share of all users.
    pub const MIN_CHARS: usize = 3;
    /// Longer than any username, email address or phone number.
    pub const MAX_CHARS: usize = 254;
    /// A number is found by its last digits only from this many on: the index holds
    /// each number's last four, and fewer would match a large share of all numbers.
    pub const MIN_TAIL_DIGITS: usize = 4;

    /// Parses the `q` of a support search.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let q = input.trim();
        let n = q.chars().count();
        if n < Self::MIN_CHARS {
            return Err(Error::field(
                "q",
                format!("must be at least {} characters", Self::MIN_CHARS),
            ));
        }
        if n > Self::MAX_CHARS {
            return Err(Error::field(
                "q",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ));
        }
        if q.chars().any(char::is_control) {
            return Err(Error::field("q", "must not contain control characters"));
        }
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let phone_like = digits.chars().count() >= Self::MIN_CHARS
            && q.chars()
                .all(|c| c.is_ascii_digit() || phone_punctuation(c));
        Ok(Self {
            text: q.to_lowercase(),
            // A whole number is found as stored (E.164); a part of one by its digits.
            phone: phone_like.then(|| PhoneE164::parse(q).ok()).flatten(),
            digits: phone_like.then_some(digits),
        })
    }

    /// The term, lower-cased: the start of the usernames and email addresses it finds.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The term as a whole phone number, when it is one.
    pub fn phone(&self) -> Option<&PhoneE164> {
        self.phone.as_ref()
    }

    /// The term's digits, when it looks like (a part of) a phone number.
    pub fn digits(&self) -> Option<&str> {
        self.digits.as_deref()
    }

    /// Whether it finds email addresses: when it holds an `@`, so that it names a whole
    /// local part. A shorter start of an address would be the start of most addresses of
    /// a deployment (`jo`, `info`), which no index answers quickly in username order; the
    /// start of a name is found as a username.
    pub fn finds_email(&self) -> bool {
        self.text.contains('@')
    }

    /// The digits that end the numbers it finds: the term's digits, when it looks like a
    /// phone number and has at least [`Self::MIN_TAIL_DIGITS`] of them.
    pub fn phone_tail(&self) -> Option<&str> {
        self.digits().filter(|d| d.len() >= Self::MIN_TAIL_DIGITS)
    }

    /// The term as a practice's audit log records it: a whole phone number or email
    /// address masked, anything else as typed.
    pub fn for_audit(&self) -> String {
        if let Some(p) = &self.phone {
            return p.masked();
        }
        match EmailAddress::parse(&self.text) {
            Ok(e) => e.masked(),
            Err(_) => self.text.clone(),
        }
    }
}

/// A destination whose deliveries support asks about: an email address or a phone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationLookup {
    Email(EmailAddress),
    Phone(PhoneE164),
}

impl DestinationLookup {
    /// An email address when it has an `@`, else a phone number. An address is
    /// lower-cased whole: deliveries are found by it case-insensitively.
    pub fn parse(input: &str) -> Result<Self, Error> {
        let s = input.trim();
        let parsed = if s.contains('@') {
            EmailAddress::parse(&s.to_lowercase()).map(Self::Email)
        } else {
            PhoneE164::parse(s).map(Self::Phone)
        };
        parsed.map_err(|_| {
            Error::field(
                "destination",
                "must be an email address or a phone number (E.164, e.g. +15551234567)",
            )
        })
    }

    /// The full destination, as codes are sent to it.
    pub fn full(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }

    /// Masked for display and audit (api.md).
    pub fn masked(&self) -> String {
        match self {
            Self::Email(e) => e.masked(),
            Self::Phone(p) => p.masked(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s1_user_lookup_needs_three_characters_and_lowercases() {
        assert!(UserLookup::parse("ab").is_err());
        assert!(UserLookup::parse("  ab  ").is_err());
        assert!(UserLookup::parse("bob\0").is_err());
        assert!(UserLookup::parse(&"x".repeat(255)).is_err());
        let l = UserLookup::parse(" Jane@Example.COM ").map_err(|e| e.to_string());
        assert_eq!(l.as_ref().map(|l| l.text()), Ok("jane@example.com"));
        assert_eq!(l.as_ref().map(|l| l.phone()), Ok(None));
        assert_eq!(l.as_ref().map(|l| l.digits()), Ok(None));
        assert_eq!(l.as_ref().map(|l| l.finds_email()), Ok(true));
        assert_eq!(l.map(|l| l.for_audit()), Ok("j•••@example.com".to_owned()));
        assert_eq!(
            UserLookup::parse("jane.d").map(|l| l.finds_email()),
            Ok(false)
        );
    }

    #[test]
    fn s1_a_phone_looking_lookup_is_normalised_to_e164() {
        let l = UserLookup::parse("(202) 555-0147").map_err(|e| e.to_string());
        assert_eq!(
            l.as_ref().map(|l| l.phone().map(|p| p.as_str().to_owned())),
            Ok(Some("+12025550147".to_owned()))
        );
        assert_eq!(l.as_ref().map(|l| l.digits()), Ok(Some("2025550147")));
        assert_eq!(l.map(|l| l.for_audit()), Ok("•••-•••-0147".to_owned()));
        // A part of a number is searched by its digits only.
        let part = UserLookup::parse("0147").map_err(|e| e.to_string());
        assert_eq!(part.as_ref().map(|l| l.phone()), Ok(None));
        assert_eq!(part.as_ref().map(|l| l.digits()), Ok(Some("0147")));
        assert_eq!(part.as_ref().map(|l| l.phone_tail()), Ok(Some("0147")));
        // Three digits are a username's start, not a number's end.
        let short = UserLookup::parse("147").map_err(|e| e.to_string());
        assert_eq!(short.as_ref().map(|l| l.digits()), Ok(Some("147")));
        assert_eq!(short.map(|l| l.phone_tail().is_none()), Ok(true));
        // Letters make it a name, not a number.
        let name = UserLookup::parse("bob2000").map_err(|e| e.to_string());
        assert_eq!(name.map(|l| l.digits().is_none()), Ok(true));
    }

    #[test]
    fn s1_destination_lookup_is_an_email_or_a_phone() {
        assert_eq!(
            DestinationLookup::parse("Jane@Example.com").map(|d| (d.full().to_owned(), d.masked())),
            Ok(("jane@example.com".to_owned(), "j•••@example.com".to_owned()))
        );
        assert_eq!(
            DestinationLookup::parse("202-555-0147").map(|d| (d.full().to_owned(), d.masked())),
            Ok(("+12025550147".to_owned(), "•••-•••-0147".to_owned()))
        );
        for bad in ["", "jane@", "not a number", "12"] {
            let e = DestinationLookup::parse(bad);
            assert!(
                matches!(&e, Err(Error::Validation(v)) if v[0].field == "destination"),
                "{bad}: {e:?}"
            );
        }
    }
}
