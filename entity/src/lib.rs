//! SeaORM entities, one file per table. No GraphQL or serde derives here: these are rows,
//! and the layers above decide what a client sees.

pub mod activities;
pub mod api_clients;
pub mod customer_external_ids;
pub mod customers;
pub mod events;
pub mod idempotency_keys;
pub mod inbound_messages;
pub mod organizations;
pub mod persisted_documents;
pub mod revoked_tokens;
pub mod social_connections;
pub mod social_profiles;
pub mod usage_daily;
pub mod users;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_dispatch;
pub mod webhook_endpoints;
