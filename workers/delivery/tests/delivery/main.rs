//! The delivery workers against a real store, on SQLite and PostgreSQL: a code issued by
//! the store leaves through the queue to the outbox or, on the real AWS SDK, to the emulator,
//! exactly once, and only while it lives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;
mod moto;

mod aws;
mod bench;
mod fairness;
mod faults;
mod optout;
mod redis_acks;
mod redis_outage;
mod retries;
mod send;
