//! Foundation schema: tenants, users, groups, sessions, sign-in flows,
//! login hours and the hash-chained audit log.

use crate::columns::*;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Company,
    Name,
    Timezone,
    Status,
    Settings,
    IsOperator,
    AuditHeadSeq,
    AuditHeadHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    TenantId,
    Username,
    UsernameLower,
    FirstName,
    LastName,
    Email,
    EmailVerified,
    Phone,
    PhoneVerified,
    Role,
    Active,
    Locked,
    MustChangePassword,
    PasswordHash,
    FailedLogins,
    MfaMethod,
    MfaEnrollment,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
    PasswordChangedAt,
}

#[derive(DeriveIden)]
enum Groups {
    Table,
    Id,
    TenantId,
    Name,
    NameLower,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum GroupMembers {
    Table,
    GroupId,
    UserId,
    TenantId,
    AddedAt,
}

#[derive(DeriveIden)]
enum SignInFlows {
    Table,
    Id,
    TenantId,
    UserId,
    Status,
    State,
    Ip,
    UserAgent,
    CreatedAt,
    ExpiresAt,
    CompletedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    TokenHash,
    TenantId,
    UserId,
    CreatedAt,
    ExpiresAt,
    LastSeenAt,
    MfaVerifiedAt,
    RevokedAt,
    Ip,
    UserAgent,
}

#[derive(DeriveIden)]
enum LoginHours {
    Table,
    Id,
    TenantId,
    UserId,
    Weekday,
    StartMinute,
    EndMinute,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    TenantId,
    Seq,
    At,
    Action,
    ActorId,
    ActorKind,
    ActorUsername,
    TargetKind,
    TargetId,
    TargetLabel,
    Ip,
    UserAgent,
    Details,
    PrevHash,
    Hash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .col(uuid_pk(Tenants::Id))
                    .col(text(Tenants::Company))
                    .col(text(Tenants::Name))
                    .col(text(Tenants::Timezone))
                    .col(text(Tenants::Status))
                    .col(text(Tenants::Settings))
                    .col(boolean(Tenants::IsOperator))
                    // The audit chain's head, so that deleting the newest events is detected.
                    .col(
                        ColumnDef::new(Tenants::AuditHeadSeq)
                            .big_integer()
                            .not_null(),
                    )
                    .col(text(Tenants::AuditHeadHash))
                    .col(ts(Tenants::CreatedAt))
                    .col(ts(Tenants::UpdatedAt))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_tenants_company")
                    .table(Tenants::Table)
                    .col(Tenants::Company)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(uuid_pk(Users::Id))
                    .col(uuid(Users::TenantId))
                    .col(text(Users::Username))
                    .col(text(Users::UsernameLower))
                    .col(text(Users::FirstName))
                    .col(text(Users::LastName))
                    .col(text_null(Users::Email))
                    .col(boolean(Users::EmailVerified))
                    .col(text_null(Users::Phone))
                    .col(boolean(Users::PhoneVerified))
                    .col(text(Users::Role))
                    .col(boolean(Users::Active))
                    .col(boolean(Users::Locked))
                    .col(boolean(Users::MustChangePassword))
                    .col(text(Users::PasswordHash))
                    .col(ColumnDef::new(Users::FailedLogins).integer().not_null())
                    .col(text(Users::MfaMethod))
                    .col(text(Users::MfaEnrollment))
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .col(ts_null(Users::LastLoginAt))
                    .col(ts_null(Users::PasswordChangedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_users_tenant",
                        Users::Table,
                        Users::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_tenant_username")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::UsernameLower)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_tenant_email")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::Email)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_tenant_phone")
                    .table(Users::Table)
                    .col(Users::TenantId)
                    .col(Users::Phone)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Groups::Table)
                    .col(uuid_pk(Groups::Id))
                    .col(uuid(Groups::TenantId))
                    .col(text(Groups::Name))
                    .col(text(Groups::NameLower))
                    .col(ts(Groups::CreatedAt))
                    .col(ts(Groups::UpdatedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_groups_tenant",
                        Groups::Table,
                        Groups::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_groups_tenant_name")
                    .table(Groups::Table)
                    .col(Groups::TenantId)
                    .col(Groups::NameLower)
                    .unique()
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(GroupMembers::Table)
                    .col(uuid(GroupMembers::GroupId))
                    .col(uuid(GroupMembers::UserId))
                    .col(uuid(GroupMembers::TenantId))
                    .col(ts(GroupMembers::AddedAt))
                    .primary_key(
                        Index::create()
                            .col(GroupMembers::GroupId)
                            .col(GroupMembers::UserId),
                    )
                    .foreign_key(&mut cascade_fk(
                        "fk_group_members_group",
                        GroupMembers::Table,
                        GroupMembers::GroupId,
                        Groups::Table,
                        Groups::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_group_members_user",
                        GroupMembers::Table,
                        GroupMembers::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_group_members_tenant",
                        GroupMembers::Table,
                        GroupMembers::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_group_members_user")
                    .table(GroupMembers::Table)
                    .col(GroupMembers::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SignInFlows::Table)
                    .col(uuid_pk(SignInFlows::Id))
                    .col(uuid(SignInFlows::TenantId))
                    .col(uuid(SignInFlows::UserId))
                    .col(text(SignInFlows::Status))
                    .col(text(SignInFlows::State))
                    .col(text_null(SignInFlows::Ip))
                    .col(text_null(SignInFlows::UserAgent))
                    .col(ts(SignInFlows::CreatedAt))
                    .col(ts(SignInFlows::ExpiresAt))
                    .col(ts_null(SignInFlows::CompletedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_sign_in_flows_tenant",
                        SignInFlows::Table,
                        SignInFlows::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_sign_in_flows_user",
                        SignInFlows::Table,
                        SignInFlows::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sign_in_flows_user")
                    .table(SignInFlows::Table)
                    .col(SignInFlows::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(uuid_pk(Sessions::Id))
                    .col(text(Sessions::TokenHash))
                    .col(uuid(Sessions::TenantId))
                    .col(uuid(Sessions::UserId))
                    .col(ts(Sessions::CreatedAt))
                    .col(ts(Sessions::ExpiresAt))
                    .col(ts(Sessions::LastSeenAt))
                    .col(ts_null(Sessions::MfaVerifiedAt))
                    .col(ts_null(Sessions::RevokedAt))
                    .col(text_null(Sessions::Ip))
                    .col(text_null(Sessions::UserAgent))
                    .foreign_key(&mut cascade_fk(
                        "fk_sessions_tenant",
                        Sessions::Table,
                        Sessions::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_sessions_user",
                        Sessions::Table,
                        Sessions::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_token_hash")
                    .table(Sessions::Table)
                    .col(Sessions::TokenHash)
                    .unique()
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sessions_user")
                    .table(Sessions::Table)
                    .col(Sessions::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LoginHours::Table)
                    .col(uuid_pk(LoginHours::Id))
                    .col(uuid(LoginHours::TenantId))
                    .col(uuid(LoginHours::UserId))
                    // 0 = Monday .. 6 = Sunday.
                    .col(
                        ColumnDef::new(LoginHours::Weekday)
                            .small_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(LoginHours::StartMinute).integer().not_null())
                    .col(ColumnDef::new(LoginHours::EndMinute).integer().not_null())
                    .foreign_key(&mut cascade_fk(
                        "fk_login_hours_tenant",
                        LoginHours::Table,
                        LoginHours::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_login_hours_user",
                        LoginHours::Table,
                        LoginHours::UserId,
                        Users::Table,
                        Users::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_hours_user")
                    .table(LoginHours::Table)
                    .col(LoginHours::UserId)
                    .take(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(uuid_pk(AuditEvents::Id))
                    .col(uuid(AuditEvents::TenantId))
                    .col(ColumnDef::new(AuditEvents::Seq).big_integer().not_null())
                    .col(ts(AuditEvents::At))
                    .col(text(AuditEvents::Action))
                    .col(ColumnDef::new(AuditEvents::ActorId).uuid().null())
                    .col(text(AuditEvents::ActorKind))
                    .col(text_null(AuditEvents::ActorUsername))
                    .col(text_null(AuditEvents::TargetKind))
                    .col(text_null(AuditEvents::TargetId))
                    .col(text_null(AuditEvents::TargetLabel))
                    .col(text_null(AuditEvents::Ip))
                    .col(text_null(AuditEvents::UserAgent))
                    .col(text(AuditEvents::Details))
                    .col(text(AuditEvents::PrevHash))
                    .col(text(AuditEvents::Hash))
                    .foreign_key(&mut cascade_fk(
                        "fk_audit_events_tenant",
                        AuditEvents::Table,
                        AuditEvents::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_tenant_seq")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::TenantId)
                    .col(AuditEvents::Seq)
                    .unique()
                    .take(),
            )
            .await?;
        for (name, col) in [
            ("idx_audit_tenant_action", AuditEvents::Action),
            ("idx_audit_tenant_actor", AuditEvents::ActorId),
            ("idx_audit_tenant_target", AuditEvents::TargetId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(AuditEvents::Table)
                        .col(AuditEvents::TenantId)
                        .col(col)
                        .col(AuditEvents::Seq)
                        .take(),
                )
                .await?;
        }

        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Children before parents so foreign keys never block a drop; indexes
        // go with their tables on both backends.
        manager
            .drop_table(Table::drop().table(AuditEvents::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(LoginHours::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(SignInFlows::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(GroupMembers::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Groups::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Users::Table).take())
            .await?;
        manager
            .drop_table(Table::drop().table(Tenants::Table).take())
            .await?;
        Ok(())
    }
}
