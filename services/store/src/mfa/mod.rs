//! Second-factor credentials of one tenant's users: authenticator secrets, recovery codes,
//! remembered devices and trusted networks. Every query carries the tenant id.
//!
//! The sign-in flow and the admin and self-service endpoints are built on these.

mod challenges;
mod devices;
mod networks;
mod recovery;
mod totp;

pub use challenges::{CheckedCode, CodeOwner, CodeRequest, Destination, IssuedCode};
pub use devices::Device;
pub use networks::TrustedNetwork;

use crate::scope::TenantScope;

/// One tenant's second-factor credentials.
pub struct Mfa<'a> {
    pub(crate) scope: TenantScope<'a>,
}

impl<'a> TenantScope<'a> {
    /// This tenant's second-factor credentials.
    pub fn mfa(self) -> Mfa<'a> {
        Mfa { scope: self }
    }
}
