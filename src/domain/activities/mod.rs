//! Activities logged against customers: calls, emails, meetings, notes, tasks, social
//! messages. Types here; rules in `validate`, reads in `read`, writes in `write`.

mod read;
mod scope;
mod validate;
mod write;

use chrono::{DateTime, Utc};
use entity::activities;
use serde::{Deserialize, Serialize};

use super::aggregate::aggregate;
use super::filter::{EqOps, TextOps, TimeOps};
use super::ids::{ActivityId, CustomerId};
use super::page::{CursorValue, PageArgs, SortSpec, SortValueKind, Sortable};
use super::projection::{
    ArrayRows, Cell, JsonCells, JsonRowDecoder, Projected, Projection, Reader,
};
use super::{Error, Result};
use crate::events::EntityKind;
use serde::de::SeqAccess;

pub use read::{Nesting, by_ids, count, count_for_customers, get, list, list_for_customers};
pub use validate::BODY_MAX_BYTES;
pub(crate) use write::log_in;
pub use write::{delete, log, update};

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
    Task,
    SocialMessage,
}

impl ActivityKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(s: &str) -> Result<Self> {
        s.parse().map_err(|_| {
            Error::Internal(format!("unknown activity kind {s:?} in the database").into())
        })
    }
}

/// An activity as the rest of the service sees it; also the event snapshot (its keys become
/// `changedFields` through [`Activity::field_name`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    pub id: ActivityId,
    pub org_id: String,
    pub customer_id: CustomerId,
    pub kind: ActivityKind,
    pub subject: String,
    pub body: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub due_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub author_id: Option<String>,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Activity {
    /// The field of the GraphQL `Activity` type that shows a snapshot key, or `None` for a key
    /// it does not expose: the one mapping from snapshot keys to `changedFields` names.
    pub fn field_name(key: &str) -> Option<&str> {
        match key {
            "orgId" | "deletedAt" => None,
            "customerId" => Some("customer"),
            "authorId" => Some("author"),
            other => Some(other),
        }
    }
}

impl crate::events::Snapshot for Activity {
    const VERSION: u64 = 1;
}

aggregate!(Activity, ActivityId, activities, EntityKind::Activity);

impl Activity {
    /// The stored row of an activity, the inverse of `TryFrom<Model>`; its tenant stamps it.
    pub(crate) fn into_row(self) -> activities::ActiveModel {
        use sea_orm::Set;
        activities::ActiveModel {
            kind: Set(self.kind.as_str().to_owned()),
            id: Set(self.id.into_string()),
            customer_id: Set(self.customer_id.into_string()),
            subject: Set(self.subject),
            body: Set(self.body),
            occurred_at: Set(self.occurred_at),
            due_at: Set(self.due_at),
            completed_at: Set(self.completed_at),
            author_id: Set(self.author_id),
            source: Set(self.source),
            external_id: Set(self.external_id),
            version: Set(self.version),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            deleted_at: Set(self.deleted_at),
            ..Default::default()
        }
    }
}

impl Projected for activities::Entity {
    type Record = Activity;

    fn decode_after(
        p: Projection<Self>,
        row: &sea_orm::QueryResult,
        first: usize,
    ) -> Result<Activity> {
        decode(p.reader_from(row, first))
    }
}

/// The rows of a nested page that the database folded into JSON, decoded with the columns
/// it fetched (`read::list_for_customers`).
struct FoldedRows {
    fetched: Projection<activities::Entity>,
    /// Whether it is one column (counted once: counting walks the table's columns).
    single: bool,
}

impl FoldedRows {
    fn new(fetched: Projection<activities::Entity>) -> Self {
        Self {
            fetched,
            single: fetched.columns().count() == 1,
        }
    }
}

impl JsonRowDecoder for FoldedRows {
    type Record = Activity;

    fn single_cell(&self) -> bool {
        self.single
    }

    fn decode<'de, A: SeqAccess<'de>>(&self, cells: JsonCells<A>) -> Result<Activity> {
        decode(self.fetched.reader(cells))
    }
}

/// The next row of a nested page that the database folded into arrays, one per column.
fn decode_arrays(p: Projection<activities::Entity>, rows: &mut ArrayRows<'_>) -> Result<Activity> {
    let first = rows.first();
    decode(p.reader_from(rows, first))
}

fn decode<R>(mut r: Reader<activities::Entity, R>) -> Result<Activity>
where
    R: Cell<String> + Cell<Option<String>> + Cell<i32>,
    R: Cell<DateTime<Utc>> + Cell<Option<DateTime<Utc>>>,
{
    use activities::Column as C;
    Ok(Activity {
        id: ActivityId::stored(r.get(C::Id, String::new())?),
        org_id: r.get(C::OrgId, String::new())?,
        customer_id: CustomerId::stored(r.get(C::CustomerId, String::new())?),
        // Any kind: not shown.
        kind: r.map(C::Kind, ActivityKind::Note, |s: String| {
            ActivityKind::parse(&s)
        })?,
        subject: r.get(C::Subject, String::new())?,
        body: r.get(C::Body, None)?,
        occurred_at: r.get(C::OccurredAt, DateTime::default())?,
        due_at: r.get(C::DueAt, None)?,
        completed_at: r.get(C::CompletedAt, None)?,
        author_id: r.get(C::AuthorId, None)?,
        source: r.get(C::Source, None)?,
        external_id: r.get(C::ExternalId, None)?,
        version: r.get(C::Version, 0)?,
        created_at: r.get(C::CreatedAt, DateTime::default())?,
        updated_at: r.get(C::UpdatedAt, DateTime::default())?,
        deleted_at: r.get(C::DeletedAt, None)?,
    })
}

impl Sortable for Activity {
    type Column = activities::Column;

    fn sort_value(&self, column: activities::Column) -> CursorValue {
        use activities::Column as C;
        match column {
            C::OccurredAt => CursorValue::at(Some(self.occurred_at)),
            C::CreatedAt => CursorValue::at(Some(self.created_at)),
            C::UpdatedAt => CursorValue::at(Some(self.updated_at)),
            C::DueAt => CursorValue::at(self.due_at),
            _ => CursorValue::Null,
        }
    }

    fn sort_id(&self) -> &str {
        self.id.as_str()
    }
}

impl TryFrom<activities::Model> for Activity {
    type Error = Error;

    fn try_from(m: activities::Model) -> Result<Self> {
        Ok(Self {
            kind: ActivityKind::parse(&m.kind)?,
            id: ActivityId::stored(m.id),
            org_id: m.org_id,
            customer_id: CustomerId::stored(m.customer_id),
            subject: m.subject,
            body: m.body,
            occurred_at: m.occurred_at,
            due_at: m.due_at,
            completed_at: m.completed_at,
            author_id: m.author_id,
            source: m.source,
            external_id: m.external_id,
            version: m.version,
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted_at: m.deleted_at,
        })
    }
}

#[derive(Clone, Debug)]
pub struct NewActivity {
    pub customer_id: String,
    pub kind: ActivityKind,
    pub subject: String,
    pub body: Option<String>,
    /// Defaults to now.
    pub occurred_at: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub source: Option<String>,
    pub external_id: Option<String>,
}

/// A partial update: `None` keeps a field; for nullable fields `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct ActivityPatch {
    pub expected_version: Option<i32>,
    pub kind: Option<ActivityKind>,
    pub subject: Option<String>,
    pub body: Option<Option<String>>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub due_at: Option<Option<DateTime<Utc>>>,
    pub completed_at: Option<Option<DateTime<Utc>>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActivityFilter {
    pub id: Option<EqOps>,
    pub customer_id: Option<EqOps>,
    pub kind: Option<EqOps>,
    pub subject: Option<TextOps>,
    pub author_id: Option<EqOps>,
    pub source: Option<TextOps>,
    pub occurred_at: Option<TimeOps>,
    pub due_at: Option<TimeOps>,
    pub completed_at: Option<TimeOps>,
    pub created_at: Option<TimeOps>,
    pub updated_at: Option<TimeOps>,
    /// Free text over subject and body.
    pub search: Option<String>,
    pub and: Vec<ActivityFilter>,
    pub or: Vec<ActivityFilter>,
    pub not: Option<Box<ActivityFilter>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ActivitySortField {
    #[default]
    OccurredAt,
    CreatedAt,
    UpdatedAt,
    DueAt,
}

/// Defaults to the newest first, the order a timeline reads in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ActivityOrder {
    pub field: ActivitySortField,
    pub descending: bool,
}

impl Default for ActivityOrder {
    fn default() -> Self {
        Self {
            field: ActivitySortField::OccurredAt,
            descending: true,
        }
    }
}

impl ActivityOrder {
    pub fn spec(self) -> SortSpec<activities::Column> {
        use activities::Column as C;
        let (name, column, nullable) = match self.field {
            ActivitySortField::OccurredAt => ("occurredAt", C::OccurredAt, false),
            ActivitySortField::CreatedAt => ("createdAt", C::CreatedAt, false),
            ActivitySortField::UpdatedAt => ("updatedAt", C::UpdatedAt, false),
            ActivitySortField::DueAt => ("dueAt", C::DueAt, true),
        };
        SortSpec {
            name,
            column,
            id: C::Id,
            kind: SortValueKind::Time,
            nullable,
            descending: self.descending,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ActivityQuery {
    pub filter: ActivityFilter,
    pub order: ActivityOrder,
    pub page: PageArgs,
    /// The columns the read fetches.
    pub projection: Projection<activities::Entity>,
}
