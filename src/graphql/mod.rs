//! The GraphQL schema: object types wrapping domain values, inputs converted to domain
//! types, connections, dataloaders, guards and the one place errors get their codes.
//! Resolvers are thin: check the caller, call `domain` (or a loader), shape the output.

mod activities;
mod changes;
mod clients;
mod connection;
mod context;
mod customers;
mod document;
mod errors;
mod fanout;
mod filters;
mod limits;
mod loaders;
mod node;
mod permissions;
mod subscriptions;
mod user_errors;
mod users;
mod viewer;

use async_graphql::{MergedObject, Schema};

pub use context::RequestAuth;
pub use document::operation_type;
pub use errors::{ErrorMapping, codes, is_request_error};
pub use fanout::{LiveOperations, LiveRequest, LiveResult, Membership, Recipient};
pub use limits::{Limits, Rejection};
pub use loaders::Loaders;

use crate::domain::Store;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    customers::CustomerQuery,
    activities::ActivityQuery,
    node::NodeQuery,
    viewer::ViewerQuery,
    clients::ClientQuery,
    changes::ChangesQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    customers::CustomerMutation,
    activities::ActivityMutation,
    clients::ClientMutation,
);

pub use subscriptions::SubscriptionRoot;

pub type CrmSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

pub fn build_schema(store: Store, limits: Limits) -> CrmSchema {
    let sdl = sdl();
    let permissions = std::sync::Arc::new(permissions::table_from_sdl(&sdl));
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(store)
    .data(permissions.clone())
    .extension(ErrorMapping)
    .extension(limits::RequestLimits::new(
        limits,
        limits::CostTable::from_sdl(&sdl),
    ))
    .extension(permissions::ScopeEnforcement::new(permissions))
    // Depth and cost are checked by `RequestLimits` (which exempts introspection from depth,
    // as schema tools need ~15 levels there); this stays as a backstop.
    .limit_depth(limits::MAX_DOCUMENT_NESTING)
    .limit_recursive_depth(32)
    .limit_directives(16);
    if !limits.introspection {
        builder = builder.disable_introspection();
    }
    builder.finish()
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}
