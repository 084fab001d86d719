//! Gatehouse domain: the types and rules of sign-in, with no I/O.
//!
//! Everything here is pure: time comes from a [`clock::Clock`], randomness from
//! the caller's RNG, so expiry, login hours and lockouts are unit-tested without sleeping.

pub mod audit;
pub mod clock;
pub mod crypto;
pub mod delivery;
pub mod devices;
pub mod error;
pub mod escalation;
pub mod ids;
pub mod inbound;
pub mod jobs;
pub mod login_hours;
pub mod lookup;
pub mod mfa;
pub mod names;
pub mod networks;
pub mod oidc;
pub mod password;
pub mod role;
pub mod sender;
pub mod session;
pub mod settings;
pub mod signin;
pub mod validation;

pub use error::Error;
pub use validation::FieldError;
