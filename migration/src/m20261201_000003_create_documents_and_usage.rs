//! Persisted documents (automatic persisted queries and trusted documents) and usage counts
//! per caller and day.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PersistedDocuments {
    Table,
    OrgId,
    Id,
    Body,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UsageDaily {
    Table,
    OrgId,
    Caller,
    Day,
    Requests,
    Cost,
    Errors,
    Rejections,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PersistedDocuments::Table)
                    // The tenant that registered it (automatic persisted queries), or empty
                    // for a trusted document an operator added, which every tenant may run.
                    .col(string_len(PersistedDocuments::OrgId, 64))
                    // A SHA-256 in hex for APQ and plain documents; a manifest's own id else.
                    .col(string_len(PersistedDocuments::Id, 128))
                    .col(text(PersistedDocuments::Body))
                    .col(timestamp_with_time_zone(PersistedDocuments::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(PersistedDocuments::OrgId)
                            .col(PersistedDocuments::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UsageDaily::Table)
                    .col(string_len(UsageDaily::OrgId, 64))
                    // `client:<id>` for an API client's tokens, `user:<subject>` otherwise.
                    .col(string_len(UsageDaily::Caller, 300))
                    .col(date(UsageDaily::Day))
                    .col(big_integer(UsageDaily::Requests))
                    .col(big_integer(UsageDaily::Cost))
                    .col(big_integer(UsageDaily::Errors))
                    .col(big_integer(UsageDaily::Rejections))
                    .primary_key(
                        Index::create()
                            .col(UsageDaily::OrgId)
                            .col(UsageDaily::Day)
                            .col(UsageDaily::Caller),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UsageDaily::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(PersistedDocuments::Table).to_owned())
            .await
    }
}
