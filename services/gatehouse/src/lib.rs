//! The Gatehouse binary's library half: its configuration ([`config`], the CLI and its
//! environment variables) and its wiring ([`wiring::build`], configuration to a running
//! process), which `main` and the tests' `spawn_app` (gatehouse-testkit-app) both use, so
//! what the tests run is what production runs.

pub mod config;
pub mod wiring;
