//! The support user search (S1) stays fast however many practices share the deployment
//! (finding 13 of the hardening review: it scanned every user, 0.6-2 s at 500,000). Its
//! answers are tested in `support.rs`; here, that every way it matches is answered by an
//! index on both databases, whatever the term and the page.

use crate::helpers::{Db, TestApp};
use gatehouse_domain::lookup::UserLookup;
use gatehouse_store::support::search_statement;
use gatehouse_testkit::on_both_databases;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

on_both_databases!(s1_every_way_of_searching_is_answered_by_an_index);

/// The plan of `statement`, one line per node. PostgreSQL is told that a sequential scan
/// costs more than any other, so that a plan that still scans `users` proves no index
/// fits (a small table would otherwise be scanned by choice).
async fn plan(app: &TestApp, statement: Statement) -> Vec<String> {
    let backend = statement.db_backend;
    let (explain, column) = match backend {
        DbBackend::Postgres => ("EXPLAIN", "QUERY PLAN"),
        _ => ("EXPLAIN QUERY PLAN", "detail"),
    };
    let txn = app.raw.begin().await.unwrap();
    if backend == DbBackend::Postgres {
        txn.execute_unprepared("SET LOCAL enable_seqscan = off")
            .await
            .unwrap();
    }
    let rows = txn
        .query_all_raw(Statement {
            sql: format!("{explain} {}", statement.sql),
            ..statement
        })
        .await
        .unwrap();
    txn.rollback().await.unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", column).unwrap())
        .collect()
}

async fn s1_every_way_of_searching_is_answered_by_an_index(db: Db) {
    let app = TestApp::spawn(db).await;
    let backend = app.raw.get_database_backend();
    let username = "idx_users_username_search";
    let email = "idx_users_email_search";
    let phone = "idx_users_phone_tail";
    let cases: [(&str, &[&str]); 5] = [
        ("jane", &[username]),
        ("jane.doe@", &[username, email]),
        ("jane.doe@example.com", &[username, email]),
        ("555-0147", &[username, phone]),
        ("+1 (202) 555-0147", &[username, phone]),
    ];
    let later = ("jane", Uuid::new_v4());
    for (q, indexes) in cases {
        let lookup = UserLookup::parse(q).unwrap();
        for after in [None, Some(later)] {
            let lines = plan(&app, search_statement(backend, &lookup, after, 50)).await;
            let text = lines.join("\n");
            for index in indexes {
                assert!(
                    text.contains(index),
                    "{q} ({after:?}) without {index}:\n{text}"
                );
            }
            let scans = lines.iter().filter(|l| match backend {
                DbBackend::Postgres => l.contains("Seq Scan on users"),
                // `SCAN users` reads every row; `SEARCH users USING INDEX` a range.
                _ => l.contains("SCAN users"),
            });
            assert_eq!(scans.count(), 0, "{q} ({after:?}) scans users:\n{text}");
        }
    }
}
