//! The schema: its roots, its extensions (error codes, request limits, field permissions)
//! and the SDL it prints.

use std::any::TypeId;
use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{MergedObject, Request, Response, Schema, ValidationMode};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use super::errors;
use super::limits::{IntrospectionMode, Parsed};
use super::order::QueryOrder;
use super::subscriptions::SubscriptionRoot;
use super::webhooks::WebhookRules;
use super::{Limits, RequestAuth};
use super::{
    activities, changes, clients, customers, limits, node, permissions, social, usage, validation,
    viewer, webhooks,
};
use crate::auth::Scope;
use crate::domain::Store;
use crate::domain::usage::Meter;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    customers::CustomerQuery,
    activities::ActivityQuery,
    node::NodeQuery,
    viewer::ViewerQuery,
    clients::ClientQuery,
    changes::ChangesQuery,
    usage::UsageQuery,
    webhooks::WebhookQuery,
    social::SocialQuery,
);

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    customers::CustomerMutation,
    customers::CustomerUpsertMutation,
    activities::ActivityMutation,
    clients::ClientMutation,
    webhooks::WebhookMutation,
    social::SocialMutation,
);

pub type CrmSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Runs requests: bounds them (`limits::admit`) before anything runs, executes them, and
/// codes their errors (`errors::finish`), the same for queries, mutations and subscriptions,
/// over HTTP and WebSocket.
///
/// Permissions are decided once per request, before execution: a caller whose token holds
/// every scope the schema guards anything with runs on a schema without the per-field
/// enforcement hook, which then costs nothing; any other caller runs on the schema that
/// checks each guarded field and argument as it resolves (so a refused field is `null` with
/// its error, and its siblings resolve). async-graphql pays for any extension on every field
/// it resolves, so neither schema has any other. Each comes in two validation modes
/// (`graphql::validation`).
#[derive(Clone)]
pub struct Executor {
    /// With the enforcement hook: for callers lacking some guarding scope.
    checked: Modes,
    /// Without it: for callers holding every guarding scope.
    trusted: Modes,
    limits: Arc<Limits>,
    costs: Arc<limits::CostTable>,
    parsed: Arc<limits::ParsedDocuments>,
    /// Every scope some field, argument or input field requires.
    guarding: Arc<Vec<Scope>>,
}

impl Executor {
    pub fn new(store: Store, meter: Meter, webhooks: WebhookRules, limits: Limits) -> Self {
        let sdl = sdl();
        let permissions = Arc::new(permissions::table_from_sdl(&sdl));
        let build = |enforce: bool, mode: ValidationMode| {
            let mut builder = Schema::build(
                QueryRoot::default(),
                MutationRoot::default(),
                SubscriptionRoot,
            )
            .data(store.clone())
            .data(meter.clone())
            .data(webhooks)
            .data(permissions.clone())
            // Depth and cost are checked by `limits::admit` (which exempts introspection from
            // depth, as schema tools need ~15 levels there); these stay as a backstop.
            .limit_depth(limits::MAX_DOCUMENT_NESTING)
            .limit_recursive_depth(32)
            .limit_directives(16)
            .validation_mode(mode);
            if enforce {
                builder =
                    builder.extension(permissions::ScopeEnforcement::new(permissions.clone()));
            }
            match limits.introspection {
                IntrospectionMode::On => {}
                // Suggestions ("did you mean …") would name the fields introspection hides.
                IntrospectionMode::Authenticated => builder = builder.disable_suggestions(),
                IntrospectionMode::Off => {
                    builder = builder.disable_introspection().disable_suggestions()
                }
            }
            builder.finish()
        };
        let modes = |enforce: bool| Modes {
            every_rule: build(enforce, ValidationMode::Strict),
            known_valid: build(enforce, ValidationMode::Fast),
        };
        Self {
            checked: modes(true),
            trusted: modes(false),
            guarding: Arc::new(permissions.scopes()),
            costs: Arc::new(limits::CostTable::from_sdl(&sdl)),
            parsed: Arc::default(),
            limits: Arc::new(limits),
        }
    }

    /// The schemas a request may run on, by what its caller may do.
    fn schemas_for(&self, auth: Option<&RequestAuth>) -> &Modes {
        match auth.and_then(|auth| auth.0.as_ref()) {
            Some(who) if self.guarding.iter().all(|scope| who.has(*scope)) => &self.trusted,
            _ => &self.checked,
        }
    }

    /// Bounds the request and picks its schema; a refusal is the whole response.
    pub fn admit(&self, mut request: Request) -> Result<Admitted<'_>, Box<Response>> {
        let auth = request
            .data
            .get(&TypeId::of::<RequestAuth>())
            .and_then(|d| d.downcast_ref::<RequestAuth>());
        let authenticated = auth.is_some_and(|auth| auth.0.is_some());
        let schemas = self.schemas_for(auth);
        if !authenticated && self.limits.introspection == IntrospectionMode::Authenticated {
            request.introspection_mode = async_graphql::IntrospectionMode::Disabled;
        }
        match limits::admit(
            &self.limits,
            &self.costs,
            &self.parsed,
            authenticated,
            &mut request,
        ) {
            Ok(admission) => {
                let parsed = admission.parsed;
                let operation = request.operation_name.as_deref();
                let every_rule = validation::needs_every_rule(
                    &parsed,
                    super::document::selected(&parsed.doc, operation).map(|op| &op.node),
                    &request.variables,
                );
                let (schema, validating) = if every_rule {
                    (&schemas.every_rule, Some(Arc::clone(&parsed)))
                } else {
                    (&schemas.known_valid, None)
                };
                if parsed.merges_fields {
                    request.data.insert(super::render::NoPlainAnswers);
                }
                let order = QueryOrder::new(Arc::clone(&parsed.doc), operation);
                request.set_parsed_query(ExecutableDocument::clone(&parsed.doc));
                Ok(Admitted {
                    schema,
                    order,
                    request,
                    validating,
                    cost: admission.cost,
                })
            }
            Err(err) => {
                let mut response = Response::from_errors(vec![err]);
                errors::finish(&mut response);
                Err(Box::new(response))
            }
        }
    }

    /// What a request would cost, without running it (`None` if it would be refused).
    pub fn cost_of(&self, request: Request) -> Option<usize> {
        self.admit(request).ok().map(|admitted| admitted.cost)
    }

    pub async fn execute(&self, request: Request) -> Response {
        match self.admit(request) {
            Ok(admitted) => admitted.run().await,
            Err(refused) => *refused,
        }
    }

    pub fn execute_stream(&self, request: Request) -> BoxStream<'static, Response> {
        match self.admit(request) {
            // A stream's responses come later, one by one; its document is not marked
            // validated from them.
            Ok(Admitted {
                schema,
                order,
                request,
                ..
            }) => schema
                .execute_stream(request)
                .map(move |mut response| {
                    finish(&order, &mut response);
                    response
                })
                .boxed(),
            Err(refused) => futures_util::stream::once(async move { *refused }).boxed(),
        }
    }
}

/// A schema in both validation modes.
#[derive(Clone)]
struct Modes {
    every_rule: CrmSchema,
    /// For documents that passed every rule before (`graphql::validation`).
    known_valid: CrmSchema,
}

/// A request past the limits, ready to run; `cost` is what it is charged.
pub struct Admitted<'e> {
    schema: &'e CrmSchema,
    order: QueryOrder,
    request: Request,
    /// The document, when this request runs every validation rule on it: if it passes, the
    /// document is known valid.
    validating: Option<Arc<Parsed>>,
    pub cost: usize,
}

impl Admitted<'_> {
    /// Whether the operation it runs is a mutation (a write, which an `Idempotency-Key`
    /// makes run once).
    pub fn is_mutation(&mut self) -> bool {
        let name = self.request.operation_name.clone();
        self.request.parsed_query().ok().is_some_and(|doc| {
            super::document::selected(doc, name.as_deref()).is_some_and(|op| {
                op.node.ty == async_graphql::parser::types::OperationType::Mutation
            })
        })
    }

    pub async fn run(self) -> Response {
        let mut response = self.schema.execute(self.request).await;
        if let Some(parsed) = self.validating
            && !validation::refused(&response)
        {
            parsed.mark_validated();
        }
        finish(&self.order, &mut response);
        response
    }
}

/// Errors coded, and the fields they nulled put in place, then every object in query order
/// (a field nulled by its error is added to its object last).
fn finish(order: &QueryOrder, response: &mut Response) {
    errors::finish(response);
    order.apply(&mut response.data);
}

/// The schema's SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl_with_options(async_graphql::SDLExportOptions::new().include_specified_by())
}
