//! Indexes for the vendor's user search across practices (S1; finding 13 of the hardening
//! review: the search scanned every user, seconds at 500,000). The search matches what an
//! index can find: the start of a username, the start of an email address (lower-cased),
//! a phone number by its last four digits. The store's `support::search_statement` writes
//! the same expressions, byte for byte, so both databases use these indexes.
//!
//! PostgreSQL compares text by the database's locale, under which a prefix is not a range
//! of a B-tree; the two text indexes there use the `"C"` collation (bytes), as the search
//! does. SQLite compares bytes already (`BINARY`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEXES: [&str; 3] = [
    "idx_users_username_search",
    "idx_users_email_search",
    "idx_users_phone_tail",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements: [&str; 3] = match manager.get_database_backend() {
            DbBackend::Postgres => [
                r#"CREATE INDEX idx_users_username_search ON users ((username_lower COLLATE "C"), id)"#,
                r#"CREATE INDEX idx_users_email_search ON users ((lower(email) COLLATE "C"))"#,
                "CREATE INDEX idx_users_phone_tail ON users ((substr(phone, length(phone) - 3)))",
            ],
            _ => [
                "CREATE INDEX idx_users_username_search ON users (username_lower, id)",
                "CREATE INDEX idx_users_email_search ON users (lower(email))",
                "CREATE INDEX idx_users_phone_tail ON users (substr(phone, length(phone) - 3))",
            ],
        };
        let db = manager.get_connection();
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in INDEXES {
            manager
                .drop_index(Index::drop().name(name).table(Users::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
}
