//! Practices, their settings and login hours.

use super::users::UserDto;
use chrono::{DateTime, Utc};
use gatehouse_domain::login_hours::{LoginWindow, LoginWindowText};
use gatehouse_domain::settings::{self, TenantSettings};
use gatehouse_store::Tenant;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Password rules of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct PasswordPolicyDto {
    pub min_length: u32,
    pub require_upper: bool,
    pub require_lower: bool,
    pub require_digit: bool,
    pub require_special: bool,
}

/// All settings of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettingsDto {
    #[schema(value_type = crate::vocabulary::MfaPolicy)]
    pub mfa_policy: settings::MfaPolicy,
    #[schema(value_type = Vec<crate::vocabulary::AllowedMethod>)]
    pub allowed_methods: Vec<settings::AllowedMethod>,
    pub code_ttl_seconds: u32,
    pub remember_device_hours: u32,
    pub lockout_threshold: u32,
    pub timezone: String,
    pub password_policy: PasswordPolicyDto,
    pub self_service_mfa: bool,
    pub sms_country_codes: Vec<String>,
    pub sms_daily_limit: u32,
}

impl SettingsDto {
    fn from_settings(s: &TenantSettings, timezone: &str) -> Self {
        SettingsDto {
            mfa_policy: s.mfa_policy,
            allowed_methods: s.allowed_methods.clone(),
            code_ttl_seconds: s.code_ttl_seconds,
            remember_device_hours: s.remember_device_hours,
            lockout_threshold: s.lockout_threshold,
            timezone: timezone.to_owned(),
            password_policy: PasswordPolicyDto {
                min_length: s.password_policy.min_length,
                require_upper: s.password_policy.require_upper,
                require_lower: s.password_policy.require_lower,
                require_digit: s.password_policy.require_digit,
                require_special: s.password_policy.require_special,
            },
            self_service_mfa: s.self_service_mfa,
            sms_country_codes: s.sms_country_codes.clone(),
            sms_daily_limit: s.sms_daily_limit,
        }
    }
}

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantDto {
    pub company: String,
    pub name: String,
    pub timezone: String,
    #[schema(value_type = crate::vocabulary::TenantStatus)]
    pub status: String,
    pub settings: SettingsDto,
    pub created_at: DateTime<Utc>,
}

impl From<&Tenant> for TenantDto {
    fn from(t: &Tenant) -> Self {
        TenantDto {
            company: t.company.to_string(),
            name: t.name.clone(),
            timezone: t.timezone.name().to_owned(),
            status: t.status.as_str().to_owned(),
            settings: SettingsDto::from_settings(&t.settings, t.timezone.name()),
            created_at: t.created_at,
        }
    }
}

/// `POST /v1/tenants` answer: the tenant and its first admin.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProvisionedTenant {
    #[serde(flatten)]
    pub tenant: TenantDto,
    pub admin: UserDto,
}

/// The first practice admin of a new tenant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAdmin {
    pub username: String,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub phone: Option<String>,
    /// Temporary: the admin must change it at first sign-in.
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

/// `POST /v1/tenants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenantRequest {
    pub company: String,
    pub name: String,
    pub timezone: Option<String>,
    pub admin: NewAdmin,
}

/// Partial password policy.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicyPatchDto {
    #[schema(minimum = 8, maximum = 128)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub min_length: Option<u32>,
    pub require_upper: Option<bool>,
    pub require_lower: Option<bool>,
    pub require_digit: Option<bool>,
    pub require_special: Option<bool>,
}

/// A whole number, also when written as `2.0` (JSON Schema's `integer` includes it).
fn whole_u32<'de, D>(d: D) -> Result<Option<u32>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(v) = n.as_u64() {
        return u32::try_from(v)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{v} is out of range")));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => {
            // Exact: whole and within range.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(f as u32))
        }
        _ => Err(D::Error::custom(format!(
            "expected a whole number from 0 to {}, got {n}",
            u32::MAX
        ))),
    }
}

/// `PATCH /v1/tenants/{company}/settings`: any subset of the settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatchDto {
    #[schema(value_type = Option<crate::vocabulary::MfaPolicy>)]
    pub mfa_policy: Option<settings::MfaPolicy>,
    /// At least one; none repeated.
    #[schema(value_type = Option<Vec<crate::vocabulary::AllowedMethod>>, min_items = 1)]
    pub allowed_methods: Option<Vec<settings::AllowedMethod>>,
    #[schema(minimum = 60, maximum = 900)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub code_ttl_seconds: Option<u32>,
    #[schema(minimum = 0, maximum = 720)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub remember_device_hours: Option<u32>,
    #[schema(minimum = 1, maximum = 100)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub lockout_threshold: Option<u32>,
    pub timezone: Option<String>,
    pub password_policy: Option<PasswordPolicyPatchDto>,
    pub self_service_mfa: Option<bool>,
    pub sms_country_codes: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "whole_u32")]
    pub sms_daily_limit: Option<u32>,
}

impl From<SettingsPatchDto> for settings::SettingsPatch {
    fn from(d: SettingsPatchDto) -> Self {
        settings::SettingsPatch {
            mfa_policy: d.mfa_policy,
            allowed_methods: d.allowed_methods,
            code_ttl_seconds: d.code_ttl_seconds,
            remember_device_hours: d.remember_device_hours,
            lockout_threshold: d.lockout_threshold,
            timezone: d.timezone,
            password_policy: d.password_policy.map(|p| settings::PasswordPolicyPatch {
                min_length: p.min_length,
                require_upper: p.require_upper,
                require_lower: p.require_lower,
                require_digit: p.require_digit,
                require_special: p.require_special,
            }),
            self_service_mfa: d.self_service_mfa,
            sms_country_codes: d.sms_country_codes,
            sms_daily_limit: d.sms_daily_limit,
        }
    }
}

/// A login-hours window.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginWindowDto {
    #[schema(value_type = crate::vocabulary::Weekday)]
    pub weekday: String,
    /// HH:MM in the tenant's time zone
    pub start: String,
    /// HH:MM (24:00 allowed); not after start means the window runs past midnight
    pub end: String,
}

impl From<LoginWindow> for LoginWindowDto {
    fn from(w: LoginWindow) -> Self {
        let t = w.to_text();
        LoginWindowDto {
            weekday: serde_json::to_value(t.weekday)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            start: t.start,
            end: t.end,
        }
    }
}

impl LoginWindowDto {
    /// The domain's text form, or the field error of an unknown weekday.
    pub fn to_text(&self, i: usize) -> Result<LoginWindowText, gatehouse_domain::FieldError> {
        let weekday =
            serde_json::from_value(serde_json::Value::String(self.weekday.to_lowercase()))
                .map_err(|_| {
                    gatehouse_domain::FieldError::new(
                        &format!("[{i}].weekday"),
                        "must be monday to sunday",
                    )
                })?;
        Ok(LoginWindowText {
            weekday,
            start: self.start.clone(),
            end: self.end.clone(),
        })
    }
}

/// Login hours of a user.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginHoursDto {
    pub timezone: String,
    pub items: Vec<LoginWindowDto>,
}
