//! API clients (OAuth2 client credentials) and revoked access tokens.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ApiClients {
    Table,
    Id,
    OrgId,
    Name,
    Scopes,
    SecretHash,
    PreviousSecretHash,
    PreviousSecretExpiresAt,
    CreatedBy,
    CreatedAt,
    SecretRotatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RevokedTokens {
    Table,
    Jti,
    ClientId,
    ExpiresAt,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ApiClients::Table)
                    .col(string_len(ApiClients::Id, 40).primary_key())
                    .col(string_len(ApiClients::OrgId, 64))
                    .col(string_len(ApiClients::Name, 100))
                    .col(text(ApiClients::Scopes))
                    .col(string_len(ApiClients::SecretHash, 255))
                    .col(string_len_null(ApiClients::PreviousSecretHash, 255))
                    .col(timestamp_with_time_zone_null(
                        ApiClients::PreviousSecretExpiresAt,
                    ))
                    .col(string_len(ApiClients::CreatedBy, 255))
                    .col(timestamp_with_time_zone(ApiClients::CreatedAt))
                    .col(timestamp_with_time_zone(ApiClients::SecretRotatedAt))
                    .col(timestamp_with_time_zone_null(ApiClients::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_api_clients_org")
                    .table(ApiClients::Table)
                    .col(ApiClients::OrgId)
                    .col(ApiClients::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RevokedTokens::Table)
                    .col(string_len(RevokedTokens::Jti, 64).primary_key())
                    .col(string_len(RevokedTokens::ClientId, 40))
                    // Rows past this are useless (the token is expired anyway) and may be pruned.
                    .col(timestamp_with_time_zone(RevokedTokens::ExpiresAt))
                    .col(timestamp_with_time_zone(RevokedTokens::RevokedAt))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RevokedTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ApiClients::Table).to_owned())
            .await
    }
}
