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
mod json;
mod limits;
mod loaders;
mod node;
mod order;
mod permissions;
mod render;
mod scalars;
mod schema;
mod social;
mod subscriptions;
mod usage;
mod user_errors;
mod users;
mod validation;
mod viewer;
mod webhooks;

pub use context::RequestAuth;
pub use document::operation_type;
pub use document::parse_bounded;
pub use errors::{codes, error_list, is_request_error};
pub use fanout::{LiveOperations, LiveRequest, LiveResult, Membership, Recipient};
pub use json::response_json;
pub use limits::{Limits, Rejection, WRITE};
pub use loaders::Loaders;
pub use schema::{Admitted, CrmSchema, Executor, MutationRoot, QueryRoot, sdl};
pub use subscriptions::SubscriptionRoot;
pub use webhooks::WebhookRules;
