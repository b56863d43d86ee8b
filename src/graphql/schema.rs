//! The schema: its roots, its extensions (error codes, request limits, field permissions)
//! and the SDL it prints.

use async_graphql::{MergedObject, Schema};

use super::Limits;
use super::errors::ErrorMapping;
use super::subscriptions::SubscriptionRoot;
use super::{activities, changes, clients, customers, limits, node, permissions, viewer};
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
