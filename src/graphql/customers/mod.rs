//! GraphQL face of customers.

mod inputs;
mod mutation;
mod plain;
mod query;
mod types;
mod upsert;

pub use inputs::patch_of as maybe_patch;
pub use mutation::CustomerMutation;
pub use query::CustomerQuery;
pub use types::{CustomerNode, LifecycleStage};
pub use upsert::CustomerUpsertMutation;
