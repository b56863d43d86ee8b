//! The event log: every write appends one row here inside its own transaction. Consumers
//! (subscriptions now; the `changes` feed and webhooks later) tail it by `seq`.

mod snapshot;
mod tail;

pub use snapshot::{Snapshot, encode as encode_snapshot};
pub use tail::{DecodeError, Event, EventHub};

use chrono::{DateTime, Utc};
use entity::events;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::Value;

/// What happened to the entity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Op {
    Created,
    Updated,
    Deleted,
    Restored,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Which aggregate an event is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "lowercase")]
pub enum EntityKind {
    Customer,
    Activity,
}

impl EntityKind {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One change to append.
pub struct NewEvent<'a> {
    pub org: &'a str,
    pub entity: EntityKind,
    pub entity_id: &'a str,
    pub op: Op,
    pub changed_fields: Vec<String>,
    pub snapshot: Value,
    pub actor: &'a str,
    pub at: DateTime<Utc>,
}

/// The stored row of an event: the one mapping, for single appends and bulk writers alike.
pub fn row(event: NewEvent<'_>) -> events::ActiveModel {
    events::ActiveModel {
        org_id: Set(event.org.to_owned()),
        entity: Set(event.entity.as_str().to_owned()),
        entity_id: Set(event.entity_id.to_owned()),
        op: Set(event.op.as_str().to_owned()),
        changed_fields: Set(serde_json::to_string(&event.changed_fields).unwrap_or_default()),
        snapshot: Set(event.snapshot),
        actor: Set(Some(event.actor.to_owned())),
        created_at: Set(event.at),
        ..Default::default()
    }
}

pub async fn append(conn: &impl ConnectionTrait, event: NewEvent<'_>) -> Result<i64, DbErr> {
    let saved = row(event).insert(conn).await?;
    if conn.get_database_backend() == sea_orm::DbBackend::Postgres {
        // Delivered at commit, to every instance listening: the cross-instance wake-up.
        conn.execute_unprepared(&format!("NOTIFY {}", tail::CHANNEL))
            .await?;
    }
    Ok(saved.seq)
}

/// How an entity's snapshot keys name fields of its GraphQL object type: the field that shows
/// a key, or `None` for a key the type does not expose (such as `orgId`). Each entity has
/// one, beside its snapshot type.
pub type FieldNames = for<'a> fn(&'a str) -> Option<&'a str>;

/// The fields whose values differ between two snapshots, by their GraphQL names, ignoring
/// bookkeeping (`version`, `updatedAt`) that changes with every write.
pub fn changed_fields(before: &Value, after: &Value, names: FieldNames) -> Vec<String> {
    let (Some(before), Some(after)) = (before.as_object(), after.as_object()) else {
        return Vec::new();
    };
    field_names(
        after.iter().filter(|(key, value)| {
            !matches!(key.as_str(), "version" | "updatedAt") && before.get(*key) != Some(*value)
        }),
        names,
    )
}

/// Every field a snapshot shows, by GraphQL name: what a creation changed.
pub fn all_fields(snapshot: &Value, names: FieldNames) -> Vec<String> {
    field_names(snapshot.as_object().into_iter().flatten(), names)
}

fn field_names<'a>(
    keys: impl Iterator<Item = (&'a String, &'a Value)>,
    names: FieldNames,
) -> Vec<String> {
    let mut fields: Vec<String> = keys
        .filter_map(|(key, _)| names(key).map(str::to_owned))
        .collect();
    fields.sort();
    fields.dedup();
    fields
}

/// Deletes events older than `keep`: the retention of the log, and so of `changes` cursors.
pub async fn prune(conn: &impl ConnectionTrait, keep: chrono::Duration) -> Result<u64, DbErr> {
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let cutoff = chrono::Utc::now() - keep;
    let done = events::Entity::delete_many()
        .filter(events::Column::CreatedAt.lt(cutoff))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
