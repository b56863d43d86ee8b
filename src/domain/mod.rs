//! The rules of the product: customers, activities, users; validation; reads with keyset
//! pagination; writes as one transaction each, appending their event.
//!
//! Every function takes the acting `Principal` (or its org) and confines itself to that
//! tenant through the aggregate's `scope` module. Nothing here knows GraphQL or HTTP.

pub mod activities;
mod aggregate;
pub mod changes;
pub mod clients;
pub mod customers;
pub mod documents;
mod error;
pub mod export;
pub mod filter;
pub mod idempotency;
pub mod ids;
pub mod page;
mod point_reads;
pub mod projection;
pub mod seed;
pub mod social;
mod store;
mod tenant;
pub mod usage;
pub mod users;
pub mod validate;
mod versioning;
pub mod webhooks;

pub use error::{Error, FieldViolation, Result, ViolationCode, is_unique_violation};
pub use store::{Store, WriteTxn};
pub use tenant::{OrgId, Tenant, TenantTable};

use chrono::{DateTime, SubsecRound, Utc};

/// Now, at the microsecond precision both backends store, so a value read back equals the
/// value written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
