//! Wrong authenticator and recovery codes are counted where they are tried: on the
//! sign-in flow and on the session (step-up). One-time codes count on their challenge.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SignInFlows {
    Table,
    MfaFailures,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    MfaFailures,
}

fn failures<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col)
        .integer()
        .not_null()
        .default(0)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SignInFlows::Table)
                    .add_column(failures(SignInFlows::MfaFailures))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(failures(Sessions::MfaFailures))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::MfaFailures)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SignInFlows::Table)
                    .drop_column(SignInFlows::MfaFailures)
                    .to_owned(),
            )
            .await
    }
}
