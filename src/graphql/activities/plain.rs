//! Activities answered plainly (see `graphql::render`): the fields of `Activity` that are
//! its row's own data, and `Customer.activities` planned ahead from its arguments.

use async_graphql::{Context, ContextSelectionSet, Name, Value};

use super::inputs::{ActivityFilterInput, ActivityOrderInput, query_of};
use super::types::ActivityKind;
use crate::domain::activities::{Activity, ActivityQuery};
use crate::domain::page::Slice;
use crate::graphql::permissions::plainly_readable;
use crate::graphql::render::{
    self, ConnectionPlan, ConnectionTypes, optional_text, optional_time, string, text, time,
};

pub const TYPES: ConnectionTypes = ConnectionTypes {
    connection: "ActivityConnection",
    edge: "ActivityEdge",
};

/// The fields of an `Activity` selection, by response key, and whether each is the last
/// to show its field.
pub struct ActivityPlan(Vec<(Name, Part)>, Vec<bool>);

#[derive(Clone, Copy)]
enum Part {
    Typename,
    Id,
    Kind,
    Subject,
    Body,
    OccurredAt,
    DueAt,
    CompletedAt,
    Source,
    ExternalId,
    Version,
    CreatedAt,
    UpdatedAt,
}

impl ActivityPlan {
    /// `None` when the selection needs a resolver (`customer`, `author`) or holds a field the
    /// caller may not read.
    pub fn of(ctx: &ContextSelectionSet<'_>) -> Option<Self> {
        let mut parts = Vec::new();
        for field in render::fields(ctx, &ctx.item.node, "Activity")? {
            let name = field.node.name.node.as_str();
            let part = match name {
                "__typename" => Part::Typename,
                _ if !plainly_readable(ctx, "Activity", name) => return None,
                "id" => Part::Id,
                "kind" => Part::Kind,
                "subject" => Part::Subject,
                "body" => Part::Body,
                "occurredAt" => Part::OccurredAt,
                "dueAt" => Part::DueAt,
                "completedAt" => Part::CompletedAt,
                "source" => Part::Source,
                "externalId" => Part::ExternalId,
                "version" => Part::Version,
                "createdAt" => Part::CreatedAt,
                "updatedAt" => Part::UpdatedAt,
                _ => return None,
            };
            parts.push((field.node.response_key().node.clone(), part));
        }
        let last = render::last_of_kind(&parts);
        Some(Self(parts, last))
    }

    pub fn render(&self, mut a: Activity) -> Value {
        let mut out = async_graphql::indexmap::IndexMap::with_capacity(self.0.len());
        for ((key, part), &last) in self.0.iter().zip(&self.1) {
            let value = match part {
                Part::Typename => string("Activity"),
                Part::Id => string(a.id.as_str()),
                Part::Kind => async_graphql::resolver_utils::enum_value(ActivityKind::from(a.kind)),
                Part::Subject => text(&mut a.subject, last),
                Part::Body => optional_text(&mut a.body, last),
                Part::OccurredAt => time(a.occurred_at),
                Part::DueAt => optional_time(a.due_at),
                Part::CompletedAt => optional_time(a.completed_at),
                Part::Source => optional_text(&mut a.source, last),
                Part::ExternalId => optional_text(&mut a.external_id, last),
                Part::Version => Value::from(a.version),
                Part::CreatedAt => time(a.created_at),
                Part::UpdatedAt => time(a.updated_at),
            };
            out.insert(key.clone(), value);
        }
        render::object(out)
    }
}

/// The answer of the activity connection field `ctx` resolves, for `page`, when its
/// selection is plain; the page back when it is not.
pub fn render(ctx: &Context<'_>, page: Slice<Activity>) -> Result<Value, Slice<Activity>> {
    match ConnectionPlan::of_field(ctx, TYPES, &ActivityPlan::of) {
        Some(plan) => Ok(plan.render(page, &|node, a| node.render(a))),
        None => Err(page),
    }
}

/// A plain `Customer.activities` selection: the page it asks for and how to answer it.
pub struct NestedPlan {
    pub query: ActivityQuery,
    pub connection: ConnectionPlan<ActivityPlan>,
}

impl NestedPlan {
    /// `ctx` is the `activities` field's own context. `None` when its selection is not plain
    /// or its arguments do not parse (the resolver then reports them).
    pub fn of(ctx: &Context<'_>) -> Option<Self> {
        let query = query_from(ctx).ok()?;
        let connection = ConnectionPlan::of_field(ctx, TYPES, &ActivityPlan::of)?;
        Some(Self { query, connection })
    }
}

/// The page `Customer.activities` asks for, read from the field's arguments as its resolver
/// reads them.
fn query_from(ctx: &Context<'_>) -> async_graphql::ServerResult<ActivityQuery> {
    Ok(query_of(
        ctx,
        ctx.param_value::<Option<i32>>("first", None)?.1,
        ctx.param_value::<Option<String>>("after", None)?.1,
        ctx.param_value::<Option<i32>>("last", None)?.1,
        ctx.param_value::<Option<String>>("before", None)?.1,
        ctx.param_value::<Option<ActivityFilterInput>>("filter", None)?
            .1,
        ctx.param_value::<Option<ActivityOrderInput>>("orderBy", None)?
            .1,
    ))
}
