//! GraphQL face of activities.

mod inputs;
mod mutation;
pub mod plain;
mod query;
mod types;

pub use inputs::{ActivityFilterInput, ActivityOrderInput, query_of};
pub use mutation::ActivityMutation;
pub use query::ActivityQuery;
pub use types::{ActivityConnection, ActivityKind, ActivityNode, ActivityTotal};
