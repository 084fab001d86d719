//! Guesses counted on the user before they are judged (P4, M13).
//!
//! - `mfa_failures`: wrong second-factor codes in a row, any method, across flows and
//!   sessions, until a second factor succeeds; the 10th locks the user.
//! - `login_tries`, `login_tries_at`: passwords being checked right now (taken before the
//!   Argon2id work, given back when judged), so that concurrent guesses are judged against
//!   the lockout threshold one by one. Tries older than a few seconds are from a process
//!   that stopped mid-check and no longer count.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    MfaFailures,
    LoginTries,
    LoginTriesAt,
}

fn counter(col: Users) -> ColumnDef {
    ColumnDef::new(col).integer().not_null().default(0).take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite adds one at a time.
        for col in [
            counter(Users::MfaFailures),
            counter(Users::LoginTries),
            ColumnDef::new(Users::LoginTriesAt)
                .timestamp_with_time_zone()
                .null()
                .take(),
        ] {
            let mut col = col;
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [Users::LoginTriesAt, Users::LoginTries, Users::MfaFailures] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
