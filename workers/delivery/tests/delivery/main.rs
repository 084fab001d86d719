//! The delivery workers against a real store, on SQLite and PostgreSQL: a code issued by
//! the store leaves through the queue and the outbox, exactly once, and only while it lives.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod send;
