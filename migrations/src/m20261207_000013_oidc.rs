//! The OpenID Connect provider (I1, I2): clients, signing keys, authorization requests
//! waiting for their sign-in, authorization codes, access and refresh tokens; and the
//! sessions' `amr` (how the sign-in was made, for ID tokens).
//!
//! No secret is stored in the clear: client secrets, codes and tokens are SHA-256 hashes
//! of 256-bit random values; private keys are sealed with the secret key (AES-256-GCM).

use crate::columns::{boolean, cascade_fk, text, text_null, ts, ts_null, uuid, uuid_pk};
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum OidcClients {
    Table,
    Id,
    ClientId,
    Name,
    Kind,
    RedirectUris,
    PostLogoutRedirectUris,
    Companies,
    SecretHash,
    PreviousSecretHash,
    PreviousSecretUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum OidcKeys {
    Table,
    Kid,
    SealedPrivate,
    PublicJwk,
    CreatedAt,
    SignsFrom,
    RetiredAt,
}

#[derive(DeriveIden)]
enum OidcRequests {
    Table,
    Id,
    ClientId,
    RedirectUri,
    Scope,
    State,
    Nonce,
    CodeChallenge,
    Prompt,
    MaxAge,
    RequireMfa,
    Company,
    LoginHint,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum OidcCodes {
    Table,
    CodeHash,
    ClientId,
    TenantId,
    UserId,
    SessionId,
    RedirectUri,
    CodeChallenge,
    Nonce,
    Scope,
    AuthTime,
    Amr,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum OidcTokens {
    Table,
    Id,
    TokenHash,
    Kind,
    ClientId,
    TenantId,
    UserId,
    SessionId,
    Family,
    CodeHash,
    Scope,
    AuthTime,
    Amr,
    CreatedAt,
    ExpiresAt,
    UsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Amr,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(OidcClients::Table)
                    .if_not_exists()
                    .col(uuid_pk(OidcClients::Id))
                    .col(text(OidcClients::ClientId).unique_key().take())
                    .col(text(OidcClients::Name))
                    .col(text(OidcClients::Kind))
                    .col(text(OidcClients::RedirectUris))
                    .col(text(OidcClients::PostLogoutRedirectUris))
                    .col(text_null(OidcClients::Companies))
                    .col(text_null(OidcClients::SecretHash))
                    .col(text_null(OidcClients::PreviousSecretHash))
                    .col(ts_null(OidcClients::PreviousSecretUntil))
                    .col(ts(OidcClients::CreatedAt))
                    .col(ts(OidcClients::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcKeys::Table)
                    .if_not_exists()
                    .col(text(OidcKeys::Kid).primary_key().take())
                    .col(text(OidcKeys::SealedPrivate))
                    .col(text(OidcKeys::PublicJwk))
                    .col(ts(OidcKeys::CreatedAt))
                    .col(ts(OidcKeys::SignsFrom))
                    .col(ts_null(OidcKeys::RetiredAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcRequests::Table)
                    .if_not_exists()
                    .col(uuid_pk(OidcRequests::Id))
                    .col(text(OidcRequests::ClientId))
                    .col(text(OidcRequests::RedirectUri))
                    .col(text(OidcRequests::Scope))
                    .col(text_null(OidcRequests::State))
                    .col(text_null(OidcRequests::Nonce))
                    .col(text(OidcRequests::CodeChallenge))
                    .col(text_null(OidcRequests::Prompt))
                    .col(ColumnDef::new(OidcRequests::MaxAge).big_integer().null())
                    .col(boolean(OidcRequests::RequireMfa))
                    .col(text_null(OidcRequests::Company))
                    .col(text_null(OidcRequests::LoginHint))
                    .col(ts(OidcRequests::CreatedAt))
                    .col(ts(OidcRequests::ExpiresAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_oidc_requests_client",
                        OidcRequests::Table,
                        OidcRequests::ClientId,
                        OidcClients::Table,
                        OidcClients::ClientId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcCodes::Table)
                    .if_not_exists()
                    .col(text(OidcCodes::CodeHash).primary_key().take())
                    .col(text(OidcCodes::ClientId))
                    .col(uuid(OidcCodes::TenantId))
                    .col(uuid(OidcCodes::UserId))
                    .col(uuid(OidcCodes::SessionId))
                    .col(text(OidcCodes::RedirectUri))
                    .col(text(OidcCodes::CodeChallenge))
                    .col(text_null(OidcCodes::Nonce))
                    .col(text(OidcCodes::Scope))
                    .col(ts(OidcCodes::AuthTime))
                    .col(text(OidcCodes::Amr))
                    .col(ts(OidcCodes::CreatedAt))
                    .col(ts(OidcCodes::ExpiresAt))
                    .col(ts_null(OidcCodes::UsedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_oidc_codes_client",
                        OidcCodes::Table,
                        OidcCodes::ClientId,
                        OidcClients::Table,
                        OidcClients::ClientId,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_oidc_codes_tenant",
                        OidcCodes::Table,
                        OidcCodes::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OidcTokens::Table)
                    .if_not_exists()
                    .col(uuid_pk(OidcTokens::Id))
                    .col(text(OidcTokens::TokenHash).unique_key().take())
                    .col(text(OidcTokens::Kind))
                    .col(text(OidcTokens::ClientId))
                    .col(uuid(OidcTokens::TenantId))
                    .col(uuid(OidcTokens::UserId))
                    .col(uuid(OidcTokens::SessionId))
                    .col(uuid(OidcTokens::Family))
                    .col(text_null(OidcTokens::CodeHash))
                    .col(text(OidcTokens::Scope))
                    .col(ts(OidcTokens::AuthTime))
                    .col(text(OidcTokens::Amr))
                    .col(ts(OidcTokens::CreatedAt))
                    .col(ts(OidcTokens::ExpiresAt))
                    .col(ts_null(OidcTokens::UsedAt))
                    .col(ts_null(OidcTokens::RevokedAt))
                    .foreign_key(&mut cascade_fk(
                        "fk_oidc_tokens_client",
                        OidcTokens::Table,
                        OidcTokens::ClientId,
                        OidcClients::Table,
                        OidcClients::ClientId,
                    ))
                    .foreign_key(&mut cascade_fk(
                        "fk_oidc_tokens_tenant",
                        OidcTokens::Table,
                        OidcTokens::TenantId,
                        Tenants::Table,
                        Tenants::Id,
                    ))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_oidc_tokens_family", OidcTokens::Family),
            ("idx_oidc_tokens_session", OidcTokens::SessionId),
            ("idx_oidc_tokens_code", OidcTokens::CodeHash),
            // The sweep's.
            ("idx_oidc_tokens_expires", OidcTokens::ExpiresAt),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(OidcTokens::Table)
                        .col(col)
                        .take(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_oidc_codes_expires")
                    .table(OidcCodes::Table)
                    .col(OidcCodes::ExpiresAt)
                    .take(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_oidc_requests_expires")
                    .table(OidcRequests::Table)
                    .col(OidcRequests::ExpiresAt)
                    .take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(text_null(Sessions::Amr))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::Amr)
                    .to_owned(),
            )
            .await?;
        for t in [
            OidcTokens::Table.into_iden(),
            OidcCodes::Table.into_iden(),
            OidcRequests::Table.into_iden(),
            OidcKeys::Table.into_iden(),
            OidcClients::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(t).to_owned())
                .await?;
        }
        Ok(())
    }
}
