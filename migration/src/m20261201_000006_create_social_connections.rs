//! Inbound social webhooks: a tenant's connections to social networks (where a network's
//! webhooks arrive, and the secrets that verify them), and the messages received through
//! them (each provider event once: the key deduplicates retries and replays).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SocialConnections {
    Table,
    Id,
    OrgId,
    Network,
    AccountId,
    AppSecret,
    VerifyToken,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum InboundMessages {
    Table,
    Id,
    OrgId,
    ConnectionId,
    EventId,
    Status,
    Reason,
    CustomerId,
    ActivityId,
    Payload,
    ReceivedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialConnections::Table)
                    .col(string_len(SocialConnections::Id, 40).primary_key())
                    .col(string_len(SocialConnections::OrgId, 64))
                    // META, X or GENERIC.
                    .col(string_len(SocialConnections::Network, 16))
                    // The page, account or user the network sends events for.
                    .col(string_len(SocialConnections::AccountId, 255))
                    // Verifies signatures: Meta's app secret, X's consumer secret, or a
                    // Standard Webhooks `whsec_…` key. Never shown again.
                    .col(string_len(SocialConnections::AppSecret, 255))
                    // Meta's subscription handshake.
                    .col(string_len_null(SocialConnections::VerifyToken, 255))
                    .col(string_len(SocialConnections::CreatedBy, 255))
                    .col(timestamp_with_time_zone(SocialConnections::CreatedAt))
                    .col(timestamp_with_time_zone(SocialConnections::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_social_connections_org")
                    .table(SocialConnections::Table)
                    .col(SocialConnections::OrgId)
                    .col(SocialConnections::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(InboundMessages::Table)
                    .col(string_len(InboundMessages::Id, 40).primary_key())
                    .col(string_len(InboundMessages::OrgId, 64))
                    .col(string_len(InboundMessages::ConnectionId, 40))
                    // The provider's id of the event (a message id, a `webhook-id`, or the
                    // SHA-256 of what could not be read).
                    .col(string_len(InboundMessages::EventId, 255))
                    // PROCESSED or UNMAPPABLE.
                    .col(string_len(InboundMessages::Status, 16))
                    .col(string_len_null(InboundMessages::Reason, 500))
                    .col(string_len_null(InboundMessages::CustomerId, 40))
                    .col(string_len_null(InboundMessages::ActivityId, 40))
                    // What could not be mapped, kept for inspection.
                    .col(text_null(InboundMessages::Payload))
                    .col(timestamp_with_time_zone(InboundMessages::ReceivedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ux_inbound_messages_event")
                    .table(InboundMessages::Table)
                    .col(InboundMessages::ConnectionId)
                    .col(InboundMessages::EventId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_inbound_messages_org")
                    .table(InboundMessages::Table)
                    .col(InboundMessages::OrgId)
                    .col(InboundMessages::ConnectionId)
                    .col(InboundMessages::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(InboundMessages::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(SocialConnections::Table).to_owned())
            .await
    }
}
