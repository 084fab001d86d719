//! Integration tests: the real app on a random port, over HTTP, against a fresh SQLite file
//! and a fresh PostgreSQL schema. Each test runs on both databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod helpers;

mod audit;
mod bad_input;
mod browser;
mod cli;
mod delivery_rules;
mod escalations;
mod groups;
mod guessing;
mod isolation;
mod login_hours;
mod mfa_flow;
mod mfa_store;
mod oidc;
mod openapi;
mod operators;
mod otlp;
mod pages;
mod processes;
mod scale;
mod settings;
mod shared_state;
mod signin;
mod step_up;
mod support;
mod support_search;
mod telemetry;
mod user_admin;
mod users;
mod webhook;
