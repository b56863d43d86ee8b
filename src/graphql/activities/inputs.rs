use async_graphql::{Enum, ID, InputObject, MaybeUndefined};

use super::types::ActivityKind;
use crate::domain::activities::{
    ActivityFilter, ActivityOrder, ActivityPatch, ActivityQuery, ActivitySortField, NewActivity,
};
use crate::domain::page::PageArgs;
use crate::graphql::customers::maybe_patch;
use crate::graphql::filters::{
    DateTimeFilter, IdFilter, OrderDirection, StringFilter, enum_ops, ops,
};
use crate::graphql::scalars::DateTime;

#[derive(InputObject, Clone)]
pub struct ActivityKindFilter {
    pub eq: Option<ActivityKind>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<ActivityKind>>,
}

fn kind_name(kind: ActivityKind) -> &'static str {
    crate::domain::activities::ActivityKind::from(kind).as_str()
}

/// Which activities to list. Fields combine with AND; use `or` and `not` for the rest.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "ActivityFilter")]
pub struct ActivityFilterInput {
    pub id: Option<IdFilter>,
    pub customer_id: Option<IdFilter>,
    pub kind: Option<ActivityKindFilter>,
    pub subject: Option<StringFilter>,
    pub author_id: Option<IdFilter>,
    pub source: Option<StringFilter>,
    pub occurred_at: Option<DateTimeFilter>,
    pub due_at: Option<DateTimeFilter>,
    pub completed_at: Option<DateTimeFilter>,
    pub created_at: Option<DateTimeFilter>,
    pub updated_at: Option<DateTimeFilter>,
    /// Free text, matched against subject and body, ignoring case.
    pub search: Option<String>,
    pub and: Option<Vec<ActivityFilterInput>>,
    pub or: Option<Vec<ActivityFilterInput>>,
    pub not: Option<Box<ActivityFilterInput>>,
}

impl From<ActivityFilterInput> for ActivityFilter {
    fn from(f: ActivityFilterInput) -> Self {
        let many = |v: Option<Vec<ActivityFilterInput>>| {
            v.unwrap_or_default().into_iter().map(Into::into).collect()
        };
        Self {
            id: ops(f.id),
            customer_id: ops(f.customer_id),
            kind: f.kind.map(|k| enum_ops(k.eq, k.in_, kind_name)),
            subject: ops(f.subject),
            author_id: ops(f.author_id),
            source: ops(f.source),
            occurred_at: ops(f.occurred_at),
            due_at: ops(f.due_at),
            completed_at: ops(f.completed_at),
            created_at: ops(f.created_at),
            updated_at: ops(f.updated_at),
            search: f.search,
            and: many(f.and),
            or: many(f.or),
            not: f.not.map(|n| Box::new((*n).into())),
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::activities::ActivitySortField")]
#[expect(
    clippy::enum_variant_names,
    reason = "the variants name timestamp fields"
)]
pub enum ActivityOrderField {
    OccurredAt,
    CreatedAt,
    UpdatedAt,
    /// Activities without a due date come last in either direction.
    DueAt,
}

#[derive(InputObject, Clone, Copy)]
#[graphql(name = "ActivityOrder")]
pub struct ActivityOrderInput {
    pub field: ActivityOrderField,
    #[graphql(default_with = "OrderDirection::Desc")]
    pub direction: OrderDirection,
}

impl From<ActivityOrderInput> for ActivityOrder {
    fn from(o: ActivityOrderInput) -> Self {
        Self {
            field: ActivitySortField::from(o.field),
            descending: o.direction.descending(),
        }
    }
}

/// The domain query of the list field `ctx` resolves: its arguments, and the columns and
/// parts of the page its selection reads.
pub fn query_of(
    ctx: &async_graphql::Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    last: Option<i32>,
    before: Option<String>,
    filter: Option<ActivityFilterInput>,
    order_by: Option<ActivityOrderInput>,
) -> ActivityQuery {
    ActivityQuery {
        filter: filter.map(Into::into).unwrap_or_default(),
        order: order_by.map(Into::into).unwrap_or_default(),
        page: PageArgs {
            first,
            after,
            last,
            before,
            reads: crate::graphql::connection::page_reads(ctx),
        },
        projection: super::types::projection(ctx),
    }
}

#[derive(InputObject)]
pub struct LogActivityInput {
    pub customer_id: ID,
    pub kind: ActivityKind,
    pub subject: String,
    pub body: Option<String>,
    /// Defaults to now.
    pub occurred_at: Option<DateTime>,
    pub due_at: Option<DateTime>,
    pub completed_at: Option<DateTime>,
    /// The system the activity comes from; with `externalId`, unique per organization.
    pub source: Option<String>,
    pub external_id: Option<String>,
}

impl From<LogActivityInput> for NewActivity {
    fn from(i: LogActivityInput) -> Self {
        Self {
            customer_id: i.customer_id.0,
            kind: i.kind.into(),
            subject: i.subject,
            body: i.body,
            occurred_at: i.occurred_at.map(Into::into),
            due_at: i.due_at.map(Into::into),
            completed_at: i.completed_at.map(Into::into),
            source: i.source,
            external_id: i.external_id,
        }
    }
}

/// Fields left out stay as they are; nullable fields set to null are cleared.
#[derive(InputObject)]
pub struct UpdateActivityInput {
    pub id: ID,
    pub expected_version: Option<i32>,
    pub kind: Option<ActivityKind>,
    pub subject: Option<String>,
    pub body: MaybeUndefined<String>,
    pub occurred_at: Option<DateTime>,
    pub due_at: MaybeUndefined<DateTime>,
    pub completed_at: MaybeUndefined<DateTime>,
}

impl UpdateActivityInput {
    pub fn into_parts(self) -> (String, ActivityPatch) {
        let patch = ActivityPatch {
            expected_version: self.expected_version,
            kind: self.kind.map(Into::into),
            subject: self.subject,
            body: maybe_patch(self.body),
            occurred_at: self.occurred_at.map(Into::into),
            due_at: maybe_patch(self.due_at.map_value(Into::into)),
            completed_at: maybe_patch(self.completed_at.map_value(Into::into)),
        };
        (self.id.0, patch)
    }
}

#[derive(InputObject)]
pub struct DeleteActivityInput {
    pub id: ID,
    pub expected_version: Option<i32>,
}
