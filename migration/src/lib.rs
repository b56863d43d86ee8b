//! Schema migrations, append-only. The same migrations run on SQLite and PostgreSQL.
//!
//! Each migration owns its `DeriveIden` enums so later changes never reach back into
//! an applied migration.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_core_tables;
mod m20261123_000002_create_api_clients;
mod m20261201_000003_create_documents_and_usage;
mod m20261201_000004_create_webhooks;
mod m20261201_000005_create_idempotency_keys;
mod m20261201_000006_create_social_connections;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_core_tables::Migration),
            Box::new(m20261123_000002_create_api_clients::Migration),
            Box::new(m20261201_000003_create_documents_and_usage::Migration),
            Box::new(m20261201_000004_create_webhooks::Migration),
            Box::new(m20261201_000005_create_idempotency_keys::Migration),
            Box::new(m20261201_000006_create_social_connections::Migration),
        ]
    }
}
