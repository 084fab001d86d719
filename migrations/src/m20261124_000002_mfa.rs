//! Multi-factor authentication: TOTP credentials, recovery codes, one-time
//! code challenges, outbound code deliveries, remembered devices and trusted
//! networks.
//!
//! The sign-in flow's MFA progress lives in `sign_in_flows.state` (JSON), so
//! the existing tables are left as they are.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

// Tables from the foundation migration, named only as foreign-key targets.

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SignInFlows {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TotpCredentials {
    Table,
    UserId,
    TenantId,
    SecretSealed,
    KeyId,
    Label,
    Confirmed,
    LastStep,
    CreatedAt,
    ConfirmedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    TenantId,
    UserId,
    CodeHash,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MfaChallenges {
    Table,
    Id,
    TenantId,
    UserId,
    FlowId,
    SessionId,
    Purpose,
    Channel,
    Destination,
    CodeHash,
    Attempts,
    ExpiresAt,
    UsedAt,
    SupersededAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    TenantId,
    UserId,
    ChallengeId,
    Channel,
    DestinationMasked,
    DestinationHash,
    Purpose,
    Status,
    Attempts,
    ProviderMessageId,
    Error,
    PayloadSealed,
    ClaimedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RememberedDevices {
    Table,
    Id,
    TenantId,
    UserId,
    TokenHash,
    Label,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum TrustedNetworks {
    Table,
    Id,
    TenantId,
    UserId,
    Cidr,
    Description,
    CreatedBy,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One TOTP credential per user, so the user is the key.
        manager
            .create_table(
                Table::create()
                    .table(TotpCredentials::Table)
                    .col(uuid_pk(TotpCredentials::UserId))
                    .col(uuid(TotpCredentials::TenantId))
                    .col(text(TotpCredentials::SecretSealed))
                    .col(text(TotpCredentials::KeyId))
                    .col(text(TotpCredentials::Label))
                    .col(boolean(TotpCredentials::Confirmed))
                    // The last accepted time step, so that a code is never accepted twice.
                    .col(
                        ColumnDef::new(TotpCredentials::LastStep)
                            .big_integer()
                            .null(),
                    )
                    .col(ts(TotpCredentials::CreatedAt))
                    .col(ts_null(TotpCredentials::ConfirmedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_totp_credentials_user",
                        TotpCredentials::Table,
                        TotpCredentials::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_totp_credentials_tenant",
                        TotpCredentials::Table,
                        TotpCredentials::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .col(uuid_pk(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::TenantId))
                    .col(uuid(RecoveryCodes::UserId))
                    .col(text(RecoveryCodes::CodeHash))
                    .col(ts_null(RecoveryCodes::UsedAt))
                    .col(ts(RecoveryCodes::CreatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_recovery_codes_tenant",
                        RecoveryCodes::Table,
                        RecoveryCodes::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_recovery_codes_user",
                        RecoveryCodes::Table,
                        RecoveryCodes::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_hash")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(MfaChallenges::Table)
                    .col(uuid_pk(MfaChallenges::Id))
                    .col(uuid(MfaChallenges::TenantId))
                    .col(uuid(MfaChallenges::UserId))
                    .col(uuid_null(MfaChallenges::FlowId))
                    .col(uuid_null(MfaChallenges::SessionId))
                    .col(text(MfaChallenges::Purpose))
                    .col(text(MfaChallenges::Channel))
                    .col(text(MfaChallenges::Destination))
                    .col(text(MfaChallenges::CodeHash))
                    .col(ColumnDef::new(MfaChallenges::Attempts).integer().not_null())
                    .col(ts(MfaChallenges::ExpiresAt))
                    .col(ts_null(MfaChallenges::UsedAt))
                    .col(ts_null(MfaChallenges::SupersededAt))
                    .col(ts(MfaChallenges::CreatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_mfa_challenges_tenant",
                        MfaChallenges::Table,
                        MfaChallenges::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_mfa_challenges_user",
                        MfaChallenges::Table,
                        MfaChallenges::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_mfa_challenges_flow",
                        MfaChallenges::Table,
                        MfaChallenges::FlowId,
                        SignInFlows::Table,
                        SignInFlows::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_mfa_challenges_session",
                        MfaChallenges::Table,
                        MfaChallenges::SessionId,
                        Sessions::Table,
                        Sessions::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_flow")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::FlowId)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_mfa_challenges_user_created")
                    .table(MfaChallenges::Table)
                    .col(MfaChallenges::UserId)
                    .col(MfaChallenges::CreatedAt)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Deliveries::Table)
                    .col(uuid_pk(Deliveries::Id))
                    .col(uuid(Deliveries::TenantId))
                    .col(uuid_null(Deliveries::UserId))
                    .col(uuid_null(Deliveries::ChallengeId))
                    .col(text(Deliveries::Channel))
                    .col(text(Deliveries::DestinationMasked))
                    .col(text(Deliveries::DestinationHash))
                    .col(text(Deliveries::Purpose))
                    .col(text(Deliveries::Status))
                    .col(ColumnDef::new(Deliveries::Attempts).integer().not_null())
                    .col(text_null(Deliveries::ProviderMessageId))
                    .col(text_null(Deliveries::Error))
                    // The message to send (destination and code), sealed with the secret key,
                    // kept only while queued so a lost job can be re-enqueued.
                    .col(text_null(Deliveries::PayloadSealed))
                    // A worker's lease on the delivery while it calls the provider.
                    .col(ts_null(Deliveries::ClaimedUntil))
                    .col(ts(Deliveries::CreatedAt))
                    .col(ts(Deliveries::UpdatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_deliveries_tenant",
                        Deliveries::Table,
                        Deliveries::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_deliveries_user",
                        Deliveries::Table,
                        Deliveries::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    // A delivery record outlives the challenge it carried.
                    .foreign_key(&mut set_null_fk(
                        "fk_deliveries_challenge",
                        Deliveries::Table,
                        Deliveries::ChallengeId,
                        MfaChallenges::Table,
                        MfaChallenges::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_tenant_user_created")
                    .table(Deliveries::Table)
                    .col(Deliveries::TenantId)
                    .col(Deliveries::UserId)
                    .col(Deliveries::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_status_created")
                    .table(Deliveries::Table)
                    .col(Deliveries::Status)
                    .col(Deliveries::CreatedAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_destination_hash")
                    .table(Deliveries::Table)
                    .col(Deliveries::DestinationHash)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_deliveries_provider_message_id")
                    .table(Deliveries::Table)
                    .col(Deliveries::ProviderMessageId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RememberedDevices::Table)
                    .col(uuid_pk(RememberedDevices::Id))
                    .col(uuid(RememberedDevices::TenantId))
                    .col(uuid(RememberedDevices::UserId))
                    .col(text(RememberedDevices::TokenHash))
                    .col(text_null(RememberedDevices::Label))
                    .col(ts(RememberedDevices::CreatedAt))
                    .col(ts(RememberedDevices::ExpiresAt))
                    .col(ts_null(RememberedDevices::LastUsedAt))
                    .col(ts_null(RememberedDevices::RevokedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_remembered_devices_tenant",
                        RememberedDevices::Table,
                        RememberedDevices::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_remembered_devices_user",
                        RememberedDevices::Table,
                        RememberedDevices::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_remembered_devices_token_hash")
                    .table(RememberedDevices::Table)
                    .col(RememberedDevices::TokenHash)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_remembered_devices_user")
                    .table(RememberedDevices::Table)
                    .col(RememberedDevices::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TrustedNetworks::Table)
                    .col(uuid_pk(TrustedNetworks::Id))
                    .col(uuid(TrustedNetworks::TenantId))
                    // Null: the network is trusted for the whole tenant.
                    .col(uuid_null(TrustedNetworks::UserId))
                    .col(text(TrustedNetworks::Cidr))
                    .col(text_null(TrustedNetworks::Description))
                    .col(uuid_null(TrustedNetworks::CreatedBy))
                    .col(ts(TrustedNetworks::CreatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_trusted_networks_tenant",
                        TrustedNetworks::Table,
                        TrustedNetworks::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_trusted_networks_user",
                        TrustedNetworks::Table,
                        TrustedNetworks::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_trusted_networks_tenant")
                    .table(TrustedNetworks::Table)
                    .col(TrustedNetworks::TenantId)
                    .take(),
            )
            .await?;

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Reverse order of `up`: deliveries before the challenges they point
        // at; indexes go with their tables on both backends.
        manager
            .drop_table(Table::drop().table(TrustedNetworks::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(RememberedDevices::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Deliveries::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(MfaChallenges::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(RecoveryCodes::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(TotpCredentials::Table).take())
            .await?;
        Ok(())
    }
}
