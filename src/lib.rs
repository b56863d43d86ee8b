//! The CRM GraphQL API service. Calls go `http -> graphql -> domain -> entity`; `auth` and
//! `events` are leaves used by all.

pub mod auth;
pub mod config;
pub mod domain;
pub mod events;
pub mod graphql;
