//! What every Gatehouse test suite shares: the two databases a test runs on, a fresh
//! one of each per test, and [`on_both_databases!`] to declare a test on both.
//!
//! PostgreSQL is reached at `GATEHOUSE_TEST_POSTGRES_URL` (default: the local server,
//! user postgres); each test gets a schema of its own in the `gatehouse_test` database,
//! so tests run in parallel without seeing each other. SQLite is a file in a directory
//! the test owns.

#![allow(clippy::expect_used)] // a test that cannot reach its database can only stop

use sea_orm::{ConnectionTrait, Database};
use std::path::Path;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    /// A fresh, empty database of this kind: a file in `dir` for SQLite, a new schema for
    /// PostgreSQL. Answers its URL.
    pub async fn fresh_url(self, dir: &Path) -> String {
        match self {
            Db::Sqlite => format!("sqlite://{}?mode=rwc", dir.join("gh.db").display()),
            Db::Postgres => fresh_postgres_schema().await,
        }
    }
}

fn postgres_base() -> String {
    std::env::var("GATEHOUSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A fresh schema in the `gatehouse_test` database; answers its URL.
pub async fn fresh_postgres_schema() -> String {
    let base = postgres_base();
    let admin = Database::connect(base.clone())
        .await
        .expect("connect to PostgreSQL");
    // Parallel test processes may race to create it; losing the race is fine.
    let _ = admin
        .execute_unprepared("CREATE DATABASE gatehouse_test")
        .await;
    admin.close().await.ok();
    let root = base
        .rsplit_once('/')
        .map(|(r, _)| r.to_owned())
        .unwrap_or(base);
    let db_url = format!("{root}/gatehouse_test");
    let schema = format!("gh_{}", uuid::Uuid::new_v4().simple());
    let conn = Database::connect(db_url.clone())
        .await
        .expect("connect to gatehouse_test");
    conn.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create schema");
    conn.close().await.ok();
    format!("{db_url}?options=-c%20search_path%3D{schema}")
}

/// Declares each listed `async fn name(db: Db)` as a test on SQLite and on PostgreSQL
/// (modules `sqlite` and `postgres`, so a filter picks one database). The calling crate
/// needs tokio with its `macros` feature.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Db::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Db::Postgres).await
                }
            )*
        }
    };
}
