//! Roles (T2): practice users are staff or practice admins; the vendor's staff are
//! support agents or support admins of the operator tenant.

use crate::Error;
use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Staff,
    PracticeAdmin,
    SupportAgent,
    SupportAdmin,
}

impl Role {
    /// The stored and serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Staff => "staff",
            Role::PracticeAdmin => "practice_admin",
            Role::SupportAgent => "support_agent",
            Role::SupportAdmin => "support_admin",
        }
    }

    /// Parses a stored or submitted role name.
    pub fn parse(s: &str) -> Result<Self, Error> {
        match s {
            "staff" => Ok(Role::Staff),
            "practice_admin" => Ok(Role::PracticeAdmin),
            "support_agent" => Ok(Role::SupportAgent),
            "support_admin" => Ok(Role::SupportAdmin),
            _ => Err(Error::field(
                "role",
                "role must be staff, practice_admin, support_agent or support_admin",
            )),
        }
    }

    /// Whether the role belongs to the vendor's support staff.
    pub fn is_support(self) -> bool {
        matches!(self, Role::SupportAgent | Role::SupportAdmin)
    }

    /// Whether this role administers its own tenant's users and settings.
    pub fn administers_own_tenant(self) -> bool {
        matches!(self, Role::PracticeAdmin | Role::SupportAdmin)
    }

    /// Whether giving this role grants power over other accounts (M11: creating, copying
    /// or promoting to it needs step-up).
    pub fn is_privileged(self) -> bool {
        !matches!(self, Role::Staff)
    }

    /// S4: whether an operator account that had `from` (`None`: a new account) and is given
    /// `self` must wait for a second support admin's approval. Every new operator account
    /// waits, and so does one that gains `support_admin`; taking power away does not.
    pub fn needs_second_approval(self, from: Option<Role>) -> bool {
        match from {
            None => self.is_support(),
            Some(from) => self == Role::SupportAdmin && from != Role::SupportAdmin,
        }
    }

    /// Checks the role fits the tenant: support roles only in the operator tenant,
    /// practice roles only in practices.
    pub fn check_for_tenant(self, is_operator: bool) -> Result<Self, Error> {
        if self.is_support() == is_operator {
            Ok(self)
        } else if is_operator {
            Err(Error::field(
                "role",
                "users of the operator tenant are support_agent or support_admin",
            ))
        } else {
            Err(Error::field(
                "role",
                "practice users are staff or practice_admin",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t2_roles_fit_their_tenant_kind() {
        assert!(Role::Staff.check_for_tenant(false).is_ok());
        assert!(Role::PracticeAdmin.check_for_tenant(true).is_err());
        assert!(Role::SupportAgent.check_for_tenant(true).is_ok());
        assert!(Role::SupportAdmin.check_for_tenant(false).is_err());
        for r in [
            Role::Staff,
            Role::PracticeAdmin,
            Role::SupportAgent,
            Role::SupportAdmin,
        ] {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
    }

    #[test]
    fn s4_new_operator_accounts_and_promotions_to_support_admin_wait_for_approval() {
        assert!(Role::SupportAgent.needs_second_approval(None));
        assert!(Role::SupportAdmin.needs_second_approval(None));
        assert!(Role::SupportAdmin.needs_second_approval(Some(Role::SupportAgent)));
        assert!(!Role::SupportAgent.needs_second_approval(Some(Role::SupportAdmin)));
        assert!(!Role::SupportAdmin.needs_second_approval(Some(Role::SupportAdmin)));
        assert!(!Role::Staff.needs_second_approval(None));
        assert!(!Role::PracticeAdmin.needs_second_approval(Some(Role::Staff)));
    }
}
