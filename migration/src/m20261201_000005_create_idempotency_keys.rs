//! Idempotency keys: the first answer to a mutation sent with an `Idempotency-Key` header,
//! kept a day so that a retry gets it back instead of writing again.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    OrgId,
    Caller,
    IdempotencyKey,
    Fingerprint,
    Response,
    LockedUntil,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(string_len(IdempotencyKeys::OrgId, 64))
                    // `client:<id>` for an API client's tokens, `user:<subject>` otherwise
                    // (as in usage_daily): a client's retry may carry a fresh token.
                    .col(string_len(IdempotencyKeys::Caller, 300))
                    .col(string_len(IdempotencyKeys::IdempotencyKey, 255))
                    // SHA-256 (hex) of the request, canonical JSON.
                    .col(string_len(IdempotencyKeys::Fingerprint, 64))
                    // The response body; null while the first request runs.
                    .col(text_null(IdempotencyKeys::Response))
                    // While the first request runs: until when its claim holds.
                    .col(timestamp_with_time_zone_null(IdempotencyKeys::LockedUntil))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .primary_key(
                        Index::create()
                            .col(IdempotencyKeys::OrgId)
                            .col(IdempotencyKeys::Caller)
                            .col(IdempotencyKeys::IdempotencyKey),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_idempotency_keys_expires_at")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::ExpiresAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(IdempotencyKeys::Table).to_owned())
            .await
    }
}
