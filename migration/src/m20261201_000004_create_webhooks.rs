//! Outbound webhooks: endpoints, deliveries (one per event and endpoint, retried until
//! delivered or given up), their attempts, and how far the event log has been dispatched.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum WebhookEndpoints {
    Table,
    Id,
    OrgId,
    Url,
    Description,
    EventTypes,
    Scopes,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    Active,
    DisabledReason,
    FailingSince,
    AfterSeq,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum WebhookDeliveries {
    Table,
    Id,
    OrgId,
    EndpointId,
    EventSeq,
    EventType,
    Payload,
    Status,
    Attempts,
    NextAttemptAt,
    LeaseUntil,
    LastStatusCode,
    LastError,
    LastLatencyMs,
    CreatedAt,
    DeliveredAt,
}

#[derive(DeriveIden)]
enum WebhookAttempts {
    Table,
    DeliveryId,
    Number,
    OrgId,
    AttemptedAt,
    StatusCode,
    LatencyMs,
    Error,
}

#[derive(DeriveIden)]
enum WebhookDispatch {
    Table,
    Name,
    LastSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(string_len(WebhookEndpoints::Id, 40).primary_key())
                    .col(string_len(WebhookEndpoints::OrgId, 64))
                    .col(text(WebhookEndpoints::Url))
                    .col(string_len_null(WebhookEndpoints::Description, 500))
                    // A JSON array of event types (`customer.created`, …).
                    .col(text(WebhookEndpoints::EventTypes))
                    // The scopes of its creator: what the payloads may show.
                    .col(text(WebhookEndpoints::Scopes))
                    .col(string_len(WebhookEndpoints::Secret, 100))
                    .col(string_len_null(WebhookEndpoints::PreviousSecret, 100))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretExpiresAt,
                    ))
                    .col(boolean(WebhookEndpoints::Active))
                    .col(string_len_null(WebhookEndpoints::DisabledReason, 500))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::FailingSince,
                    ))
                    // The tenant's last event when the endpoint was made: it hears what follows.
                    .col(big_integer(WebhookEndpoints::AfterSeq))
                    .col(string_len(WebhookEndpoints::CreatedBy, 255))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_endpoints_org")
                    .table(WebhookEndpoints::Table)
                    .col(WebhookEndpoints::OrgId)
                    .col(WebhookEndpoints::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    // The `webhook-id` receivers deduplicate by: the same on every attempt.
                    .col(string_len(WebhookDeliveries::Id, 64).primary_key())
                    .col(string_len(WebhookDeliveries::OrgId, 64))
                    .col(string_len(WebhookDeliveries::EndpointId, 40))
                    .col(big_integer_null(WebhookDeliveries::EventSeq))
                    .col(string_len(WebhookDeliveries::EventType, 40))
                    // The body, exactly as signed and sent.
                    .col(text(WebhookDeliveries::Payload))
                    // PENDING, DELIVERED or FAILED (given up).
                    .col(string_len(WebhookDeliveries::Status, 16))
                    .col(integer(WebhookDeliveries::Attempts))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::NextAttemptAt,
                    ))
                    // Claimed by a worker until then; a worker that dies lets it lapse.
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::LeaseUntil))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(string_len_null(WebhookDeliveries::LastError, 500))
                    .col(integer_null(WebhookDeliveries::LastLatencyMs))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone_null(
                        WebhookDeliveries::DeliveredAt,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_due")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ix_webhook_deliveries_endpoint")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(string_len(WebhookAttempts::DeliveryId, 64))
                    .col(integer(WebhookAttempts::Number))
                    .col(string_len(WebhookAttempts::OrgId, 64))
                    .col(timestamp_with_time_zone(WebhookAttempts::AttemptedAt))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(integer(WebhookAttempts::LatencyMs))
                    .col(string_len_null(WebhookAttempts::Error, 500))
                    .primary_key(
                        Index::create()
                            .col(WebhookAttempts::DeliveryId)
                            .col(WebhookAttempts::Number),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDispatch::Table)
                    .col(string_len(WebhookDispatch::Name, 40).primary_key())
                    .col(big_integer(WebhookDispatch::LastSeq))
                    .to_owned(),
            )
            .await?;
        // Dispatch starts after the events that exist now: none of them has an endpoint.
        manager
            .get_connection()
            .execute_unprepared(
                "INSERT INTO webhook_dispatch (name, last_seq) \
                 SELECT 'outbox', COALESCE(MAX(seq), 0) FROM events",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            WebhookDispatch::Table.into_iden(),
            WebhookAttempts::Table.into_iden(),
            WebhookDeliveries::Table.into_iden(),
            WebhookEndpoints::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
