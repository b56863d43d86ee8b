//! The CRM GraphQL API service. Calls go `http -> graphql -> domain -> entity`; `auth` and
//! `events` are leaves used by all.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod events;
pub mod export;
pub mod graphql;
pub mod http;
pub mod import;
pub mod manifest;
pub mod metrics;
pub mod telemetry;
pub mod webhooks;
