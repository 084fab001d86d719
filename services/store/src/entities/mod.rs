//! sea-orm entities, one per table. Repositories in this crate are the only users:
//! everything outside reaches data through tenant-scoped repository methods.

pub mod audit_events;
pub mod audit_inbox;
pub mod deliveries;
pub mod delivery_attempts;
pub mod email_suppressions;
pub mod escalations;
pub mod group_members;
pub mod groups;
pub mod inbound_events;
pub mod login_hours;
pub mod mfa_challenges;
pub mod oidc_clients;
pub mod oidc_codes;
pub mod oidc_keys;
pub mod oidc_requests;
pub mod oidc_tokens;
pub mod phone_opt_outs;
pub mod recovery_codes;
pub mod remembered_devices;
pub mod sessions;
pub mod sign_in_flows;
pub mod tenants;
pub mod totp_credentials;
pub mod trusted_networks;
pub mod users;
