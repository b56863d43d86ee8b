//! Integration tests over real HTTP against a server started on a free port. Each test gets
//! its own database: a fresh SQLite file, or a fresh PostgreSQL database when
//! `TEST_DATABASE_URL` is set.

#![expect(
    clippy::expect_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod activities;
mod batching;
mod cli;
mod customers;
mod edge;
mod events;
mod export;
mod filters;
mod fuzz;
mod graphiql;
mod helpers;
mod http_spec;
mod import;
mod inbound;
mod oauth;
mod pagination;
mod persisted;
mod plain_reads;
mod rate_limits;
mod realtime;
mod robustness;
mod schema;
mod scopes;
mod scoping;
mod storage;
mod tenancy;
mod timeouts;
mod tokens;
mod upsert;
mod webhooks;
mod ws;
mod ws_client;
