//! Tenant settings: stored as one JSON document, patched field by field, validated whole.

use crate::Error;
use crate::validation::{Collector, FieldError};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// The tenant's MFA policy (M2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaPolicy {
    Off,
    Suggest,
    Require,
}

/// A second-factor method a tenant may allow (M1); `none` is not a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedMethod {
    Email,
    Sms,
    Totp,
}

/// Password rules of a tenant (P2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PasswordPolicy {
    pub min_length: u32,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_special: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 12,
            require_upper: true,
            require_lower: true,
            require_digit: true,
            require_special: true,
        }
    }
}

/// Every setting of a tenant. Unknown or missing fields of a stored document take defaults,
/// so settings added later apply to existing tenants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    pub mfa_policy: MfaPolicy,
    pub allowed_methods: Vec<AllowedMethod>,
    pub code_ttl_seconds: u32,
    pub remember_device_hours: u32,
    pub lockout_threshold: u32,
    pub password_policy: PasswordPolicy,
    pub self_service_mfa: bool,
    pub sms_country_codes: Vec<String>,
    pub sms_daily_limit: u32,
}

impl Default for TenantSettings {
    fn default() -> Self {
        Self {
            mfa_policy: MfaPolicy::Require,
            allowed_methods: vec![
                AllowedMethod::Email,
                AllowedMethod::Sms,
                AllowedMethod::Totp,
            ],
            code_ttl_seconds: 300,
            remember_device_hours: 18,
            lockout_threshold: 5,
            password_policy: PasswordPolicy::default(),
            self_service_mfa: true,
            sms_country_codes: vec!["1".to_owned()],
            sms_daily_limit: 500,
        }
    }
}

/// A partial update of the password policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyPatch {
    pub min_length: Option<u32>,
    pub require_upper: Option<bool>,
    pub require_lower: Option<bool>,
    pub require_digit: Option<bool>,
    pub require_special: Option<bool>,
}

/// A partial update of tenant settings, as `PATCH /v1/tenants/{company}/settings` takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub mfa_policy: Option<MfaPolicy>,
    pub allowed_methods: Option<Vec<AllowedMethod>>,
    pub code_ttl_seconds: Option<u32>,
    pub remember_device_hours: Option<u32>,
    pub lockout_threshold: Option<u32>,
    pub timezone: Option<String>,
    pub password_policy: Option<PasswordPolicyPatch>,
    pub self_service_mfa: Option<bool>,
    pub sms_country_codes: Option<Vec<String>>,
    pub sms_daily_limit: Option<u32>,
}

impl SettingsPatch {
    /// Whether the patch touches a setting that can weaken a defence (M11: step-up):
    /// the MFA policy and methods, how long devices are remembered, the lockout
    /// threshold, the password policy.
    pub fn touches_a_defence(&self) -> bool {
        self.mfa_policy.is_some()
            || self.allowed_methods.is_some()
            || self.remember_device_hours.is_some()
            || self.lockout_threshold.is_some()
            || self.password_policy.is_some()
    }
}

/// Bounds of the numeric settings.
pub const CODE_TTL_RANGE: std::ops::RangeInclusive<u32> = 60..=900;
pub const REMEMBER_HOURS_RANGE: std::ops::RangeInclusive<u32> = 0..=720;
pub const LOCKOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=100;
pub const MIN_LENGTH_RANGE: std::ops::RangeInclusive<u32> = 8..=128;
pub const SMS_DAILY_RANGE: std::ops::RangeInclusive<u32> = 0..=1_000_000;

/// Parses an IANA time zone name.
pub fn parse_timezone(field: &str, name: &str) -> Result<Tz, Error> {
    name.trim()
        .parse::<Tz>()
        .map_err(|_| Error::field(field, "must be an IANA time zone such as America/New_York"))
}

fn check_range(c: &mut Collector, field: &str, v: u32, r: std::ops::RangeInclusive<u32>) {
    if !r.contains(&v) {
        c.push(FieldError::new(
            field,
            format!("must be between {} and {}", r.start(), r.end()),
        ));
    }
}

impl SettingsPatch {
    /// Applies the patch to `current`, validating every field; all problems are reported at once.
    /// The operator tenant's MFA policy is always `require` (M2).
    pub fn apply(
        self,
        current: &TenantSettings,
        is_operator: bool,
    ) -> Result<(TenantSettings, Option<Tz>), Error> {
        let mut s = current.clone();
        let mut c = Collector::new();
        if let Some(p) = self.mfa_policy {
            if is_operator && p != MfaPolicy::Require {
                c.push(FieldError::new(
                    "mfa_policy",
                    "the operator tenant always requires MFA",
                ));
            }
            s.mfa_policy = p;
        }
        if let Some(mut m) = self.allowed_methods {
            let before = m.len();
            let mut seen = Vec::new();
            m.retain(|x| {
                let fresh = !seen.contains(x);
                seen.push(*x);
                fresh
            });
            if m.is_empty() {
                c.push(FieldError::new(
                    "allowed_methods",
                    "at least one method must be allowed",
                ));
            } else if m.len() != before {
                c.push(FieldError::new(
                    "allowed_methods",
                    "methods must not repeat",
                ));
            }
            s.allowed_methods = m;
        }
        if let Some(v) = self.code_ttl_seconds {
            check_range(&mut c, "code_ttl_seconds", v, CODE_TTL_RANGE);
            s.code_ttl_seconds = v;
        }
        if let Some(v) = self.remember_device_hours {
            check_range(&mut c, "remember_device_hours", v, REMEMBER_HOURS_RANGE);
            s.remember_device_hours = v;
        }
        if let Some(v) = self.lockout_threshold {
            check_range(&mut c, "lockout_threshold", v, LOCKOUT_RANGE);
            s.lockout_threshold = v;
        }
        let tz = self
            .timezone
            .as_deref()
            .and_then(|t| c.take(parse_timezone("timezone", t)));
        if let Some(p) = self.password_policy {
            if let Some(v) = p.min_length {
                check_range(&mut c, "password_policy.min_length", v, MIN_LENGTH_RANGE);
                s.password_policy.min_length = v;
            }
            let pp = &mut s.password_policy;
            pp.require_upper = p.require_upper.unwrap_or(pp.require_upper);
            pp.require_lower = p.require_lower.unwrap_or(pp.require_lower);
            pp.require_digit = p.require_digit.unwrap_or(pp.require_digit);
            pp.require_special = p.require_special.unwrap_or(pp.require_special);
        }
        if let Some(v) = self.self_service_mfa {
            s.self_service_mfa = v;
        }
        if let Some(codes) = self.sms_country_codes {
            let valid = |cc: &String| {
                (1..=3).contains(&cc.len())
                    && cc.bytes().all(|b| b.is_ascii_digit())
                    && !cc.starts_with('0')
            };
            if let Some(bad) = codes.iter().find(|cc| !valid(cc)) {
                c.push(FieldError::new(
                    "sms_country_codes",
                    format!("'{bad}' is not a country calling code (1 to 3 digits, e.g. \"1\")"),
                ));
            }
            s.sms_country_codes = codes;
        }
        if let Some(v) = self.sms_daily_limit {
            check_range(&mut c, "sms_daily_limit", v, SMS_DAILY_RANGE);
            s.sms_daily_limit = v;
        }
        c.finish()?;
        Ok((s, tz))
    }
}

/// Whether a tenant may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Suspended => "suspended",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch(json: &str) -> SettingsPatch {
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"))
    }

    #[test]
    fn defaults_match_the_contract() {
        let s = TenantSettings::default();
        assert_eq!(s.mfa_policy, MfaPolicy::Require);
        assert_eq!(s.code_ttl_seconds, 300);
        assert_eq!(s.remember_device_hours, 18);
        assert_eq!(s.lockout_threshold, 5);
        assert_eq!(s.password_policy.min_length, 12);
        assert_eq!(s.sms_country_codes, vec!["1"]);
        assert_eq!(s.sms_daily_limit, 500);
        let from_empty: TenantSettings = serde_json::from_str("{}").unwrap_or_default();
        assert_eq!(from_empty, s);
    }

    #[test]
    fn patch_changes_only_named_fields() {
        let cur = TenantSettings::default();
        let (s, tz) = patch(r#"{"code_ttl_seconds": 600, "password_policy": {"min_length": 14}, "timezone": "America/Chicago"}"#)
            .apply(&cur, false)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(s.code_ttl_seconds, 600);
        assert_eq!(s.password_policy.min_length, 14);
        assert!(s.password_policy.require_special);
        assert_eq!(tz, Some(chrono_tz::America::Chicago));
    }

    #[test]
    fn patch_reports_every_bad_field() {
        let cur = TenantSettings::default();
        let r = patch(r#"{"code_ttl_seconds": 5, "remember_device_hours": 1000, "timezone": "Mars/Base", "allowed_methods": [], "sms_country_codes": ["+1"]}"#)
            .apply(&cur, false);
        let Err(Error::Validation(errs)) = r else {
            panic!("expected errors")
        };
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "allowed_methods",
                "code_ttl_seconds",
                "remember_device_hours",
                "timezone",
                "sms_country_codes"
            ]
        );
    }

    #[test]
    fn m2_operator_tenant_always_requires_mfa() {
        let cur = TenantSettings::default();
        assert!(patch(r#"{"mfa_policy": "off"}"#).apply(&cur, true).is_err());
        assert!(patch(r#"{"mfa_policy": "off"}"#).apply(&cur, false).is_ok());
    }

    #[test]
    fn unknown_settings_are_rejected() {
        assert!(serde_json::from_str::<SettingsPatch>(r#"{"mfa_polcy": "off"}"#).is_err());
    }
}
