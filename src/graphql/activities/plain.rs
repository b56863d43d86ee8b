//! Activities answered plainly (see `graphql::render`): the fields of `Activity` that are
//! its row's own data, and `Customer.activities` planned ahead from its arguments.

use async_graphql::{Context, ContextSelectionSet, Name};

use super::inputs::{ActivityFilterInput, ActivityOrderInput, query_of};
use super::types::ActivityKind;
use crate::domain::activities::{Activity, ActivityQuery};
use crate::domain::page::Slice;
use crate::graphql::permissions::PlainlyReadable;
use crate::graphql::render::{self, ConnectionPlan, ConnectionTypes, Json, optional_time, time};

pub const TYPES: ConnectionTypes = ConnectionTypes {
    connection: "ActivityConnection",
    edge: "ActivityEdge",
};

/// The fields of an `Activity` selection, by response key.
pub struct ActivityPlan(Vec<(Name, Part)>);

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
        let readable = PlainlyReadable::of(ctx);
        for field in render::fields(ctx, &ctx.item.node, "Activity")? {
            let name = field.node.name.node.as_str();
            let part = match name {
                "__typename" => Part::Typename,
                _ if !readable.field("Activity", name) => return None,
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
        Some(Self(parts))
    }

    pub fn write(&self, out: &mut Json, a: &Activity) {
        out.object(&self.0, |out, part| match part {
            Part::Typename => out.str("Activity"),
            Part::Id => out.str(a.id.as_str()),
            Part::Kind => out.value(&async_graphql::resolver_utils::enum_value(
                ActivityKind::from(a.kind),
            )),
            Part::Subject => out.str(&a.subject),
            Part::Body => out.optional_str(a.body.as_deref()),
            Part::OccurredAt => time(out, a.occurred_at),
            Part::DueAt => optional_time(out, a.due_at),
            Part::CompletedAt => optional_time(out, a.completed_at),
            Part::Source => out.optional_str(a.source.as_deref()),
            Part::ExternalId => out.optional_str(a.external_id.as_deref()),
            Part::Version => out.int(i64::from(a.version)),
            Part::CreatedAt => time(out, a.created_at),
            Part::UpdatedAt => time(out, a.updated_at),
        });
    }
}

/// The answer of the activity connection field `ctx` resolves, for `page`, when its
/// selection is plain; the page back when it is not.
pub fn render(ctx: &Context<'_>, page: Slice<Activity>) -> Result<Json, Slice<Activity>> {
    match ConnectionPlan::of_field(ctx, TYPES, &ActivityPlan::of) {
        Some(plan) => Ok(plan.render(&page, &|node, out, a| node.write(out, a))),
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
