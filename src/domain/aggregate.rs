//! The machinery every aggregate shares: the versioned write (lock the live row, check the
//! version the client read, save only if nobody wrote in between, append the event in the
//! same transaction) and the reads by id. An aggregate brings its entity, its mapping from
//! rows and its field names; the rest is here, once.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::SelectStatement;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait,
    IntoActiveModel, QueryFilter, QuerySelect, QueryTrait, Select,
};

use super::page::{Page, PageArgs, Slice, SortSpec, Sortable};
use super::projection::{Projected, Projection};
use super::store::WriteTxn;
use super::{Error, Result, Tenant, TenantTable, versioning};
use crate::auth::Principal;
use crate::events::{self, EntityKind, FieldNames, NewEvent, Op, Snapshot};

/// A stored row with optimistic concurrency.
pub trait VersionedRow: Clone + Send + Sync {
    fn id(&self) -> &str;
    fn version(&self) -> i32;
    /// Makes this row the next version, written at `at`; `None` when the version is at
    /// its maximum, which no sequence of writes reaches (the row was edited by hand).
    fn advance(&mut self, at: DateTime<Utc>) -> Option<()>;
}

/// An aggregate: a record of the product, read and written through the shared paths.
pub trait Aggregate: Snapshot + Sized + TryFrom<Row<Self>, Error = Error> {
    type Entity: TenantTable;
    /// Its id type.
    type Id: AsRef<str> + Clone + Send + Sync + Into<sea_orm::Value>;
    /// What its events are about.
    const KIND: EntityKind;
    fn id_column() -> <Self::Entity as EntityTrait>::Column;
    fn version_column() -> <Self::Entity as EntityTrait>::Column;
    fn deleted_column() -> <Self::Entity as EntityTrait>::Column;
    /// Its snapshot keys as the fields of its GraphQL type (`None` for internal keys).
    fn field_names() -> FieldNames;
    fn id(&self) -> &Self::Id;
    fn updated_at(&self) -> DateTime<Utc>;
}

/// Implements `Aggregate` for a record whose table has the usual columns (`id`, `version`,
/// `deleted_at`, `updated_at`) and whose type has `field_name`.
macro_rules! aggregate {
    ($record:ty, $id:ty, $table:ident, $kind:expr) => {
        impl $crate::domain::aggregate::Aggregate for $record {
            type Entity = $table::Entity;
            type Id = $id;
            const KIND: $crate::events::EntityKind = $kind;

            fn id_column() -> $table::Column {
                $table::Column::Id
            }

            fn version_column() -> $table::Column {
                $table::Column::Version
            }

            fn deleted_column() -> $table::Column {
                $table::Column::DeletedAt
            }

            fn field_names() -> $crate::events::FieldNames {
                <$record>::field_name
            }

            fn id(&self) -> &$id {
                &self.id
            }

            fn updated_at(&self) -> chrono::DateTime<chrono::Utc> {
                self.updated_at
            }
        }

        impl $crate::domain::aggregate::VersionedRow for $table::Model {
            fn id(&self) -> &str {
                &self.id
            }

            fn version(&self) -> i32 {
                self.version
            }

            fn advance(&mut self, at: chrono::DateTime<chrono::Utc>) -> Option<()> {
                self.version = self.version.checked_add(1)?;
                self.updated_at = at;
                Some(())
            }
        }
    };
}

pub(crate) use aggregate;

/// The stored row of an aggregate.
pub type Row<A> = <<A as Aggregate>::Entity as EntityTrait>::Model;
type Active<A> = <<A as Aggregate>::Entity as EntityTrait>::ActiveModel;

/// Opens the write of the live aggregate `id`: a write transaction, and in it the row,
/// locked, if it still has the version the client read (when it says which).
pub async fn open_write<A>(
    t: &Tenant,
    id: &A::Id,
    expected_version: Option<i32>,
) -> Result<(WriteTxn, Row<A>)>
where
    A: Aggregate,
    Row<A>: VersionedRow,
{
    let txn = t.store().write().await?;
    let before = live_row::<A>(&txn, t, id).await?;
    versioning::check(expected_version, before.version())?;
    Ok((txn, before))
}

/// The versioned write every aggregate shares: `after` saved as the next version of
/// `before`, written at `at`, and its event appended with the fields that changed (plus
/// `also_changed`, fields kept in tables of their own), in `txn`; the caller commits. An
/// update that changes nothing writes nothing: no new version, no event.
pub async fn write_next<A>(
    txn: &WriteTxn,
    t: &Tenant,
    before: Row<A>,
    mut after: Row<A>,
    at: DateTime<Utc>,
    op: Op,
    also_changed: &[&str],
) -> Result<A>
where
    A: Aggregate,
    Row<A>: VersionedRow + IntoActiveModel<Active<A>>,
    Active<A>: ActiveModelTrait<Entity = A::Entity> + Send,
{
    let old = A::try_from(before.clone())?;
    let mut changed = changed_fields(&old, &A::try_from(after.clone())?)?;
    changed.extend(also_changed.iter().map(|f| (*f).to_owned()));
    changed.sort();
    changed.dedup();
    if op == Op::Updated && changed.is_empty() {
        return Ok(old);
    }
    after
        .advance(at)
        .ok_or_else(|| Error::Internal("a row's version is at its maximum".into()))?;
    let saved = save::<A>(txn, t, &before, after).await?;
    append(&**txn, t.who(), &saved, op, changed).await?;
    Ok(saved)
}

/// The live row `id` of the tenant, locked for the rest of the transaction.
async fn live_row<A>(txn: &DatabaseTransaction, t: &Tenant, id: &A::Id) -> Result<Row<A>>
where
    A: Aggregate,
{
    t.find::<A::Entity>()
        .filter(A::id_column().eq(id.clone()))
        .filter(A::deleted_column().is_null())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound)
}

/// Writes `after` only if the row still has the version read into `before`: a concurrent
/// writer that committed in between makes this a conflict, not a lost update.
async fn save<A>(txn: &DatabaseTransaction, t: &Tenant, before: &Row<A>, after: Row<A>) -> Result<A>
where
    A: Aggregate,
    Row<A>: VersionedRow + IntoActiveModel<Active<A>>,
    Active<A>: ActiveModelTrait<Entity = A::Entity> + Send,
{
    let result = t
        .update::<A::Entity>()
        .set(after.clone().into_active_model().reset_all())
        .filter(A::id_column().eq(before.id()))
        .filter(A::version_column().eq(before.version()))
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(versioning::conflict(before.version() + 1));
    }
    A::try_from(after)
}

/// The `changedFields` of a write from `before` to `after`, by GraphQL field name.
fn changed_fields<A: Aggregate>(before: &A, after: &A) -> Result<Vec<String>> {
    Ok(events::changed_fields(
        &serde_json::to_value(before)?,
        &serde_json::to_value(after)?,
        A::field_names(),
    ))
}

/// Every field of a new aggregate, by GraphQL field name.
pub fn all_fields<A: Aggregate>(created: &A) -> Result<Vec<String>> {
    Ok(events::all_fields(
        &serde_json::to_value(created)?,
        A::field_names(),
    ))
}

/// The event of a write by `who`, with the aggregate as it now is.
pub fn event<'a, A: Aggregate>(
    who: &'a Principal,
    aggregate: &'a A,
    op: Op,
    changed_fields: Vec<String>,
) -> Result<NewEvent<'a>> {
    Ok(NewEvent {
        org: &who.org,
        entity: A::KIND,
        entity_id: aggregate.id().as_ref(),
        op,
        changed_fields,
        snapshot: events::encode_snapshot(aggregate)?,
        actor: &who.sub,
        at: aggregate.updated_at(),
    })
}

/// Appends the event of a write, in its transaction.
pub async fn append<A: Aggregate>(
    conn: &impl ConnectionTrait,
    who: &Principal,
    aggregate: &A,
    op: Op,
    changed_fields: Vec<String>,
) -> Result<()> {
    events::append(conn, event(who, aggregate, op, changed_fields)?).await?;
    Ok(())
}

/// A live aggregate of the tenant, or `None`: whether it never existed, was deleted, or is
/// another tenant's, the caller cannot tell.
pub async fn get<A: Aggregate>(t: &Tenant, id: &A::Id) -> Result<Option<A>> {
    t.find::<A::Entity>()
        .filter(A::id_column().eq(id.clone()))
        .filter(A::deleted_column().is_null())
        .one(t.db())
        .await?
        .map(A::try_from)
        .transpose()
}

/// As `get`, fetching only the columns of `projection` (and the id); the others hold the
/// defaults `Projected::decode` gives them, which nothing shows.
pub async fn get_projected<A>(
    t: &Tenant,
    id: &A::Id,
    projection: Projection<A::Entity>,
) -> Result<Option<A>>
where
    A: Aggregate,
    A::Entity: Projected<Record = A>,
{
    let projection = projection.with(A::id_column());
    let backend = t.db().get_database_backend();
    let values = sea_orm::Values(vec![t.org().as_str().into(), id.clone().into()]);
    let statement = super::point_reads::statement(
        backend,
        std::any::TypeId::of::<A::Entity>(),
        projection.bits(),
        values,
        || {
            let select = t
                .find::<A::Entity>()
                .select_only()
                .columns(projection.columns())
                .filter(A::id_column().eq(id.clone()))
                .filter(A::deleted_column().is_null());
            QueryTrait::build(&select, backend)
        },
    );
    t.db()
        .query_one_raw(statement)
        .await?
        .map(|row| A::Entity::decode(projection, &row))
        .transpose()
}

/// The tenant's live aggregates among `ids`, in no particular order (for loaders).
pub async fn by_ids<A: Aggregate>(t: &Tenant, ids: &[A::Id]) -> Result<Vec<A>> {
    t.find::<A::Entity>()
        .filter(A::id_column().is_in(ids.iter().cloned()))
        .filter(A::deleted_column().is_null())
        .all(t.db())
        .await?
        .into_iter()
        .map(A::try_from)
        .collect()
}

/// The statement of one keyset page of `select`, selecting `columns`.
pub fn page_query<E: EntityTrait>(
    select: Select<E>,
    spec: &SortSpec<E::Column>,
    page: &Page,
    columns: Projection<E>,
) -> SelectStatement {
    let mut select = select
        .select_only()
        .columns(columns.columns())
        .filter(spec.bounds(page))
        .into_query();
    spec.order(&mut select, page.backward);
    select.limit(page.fetch());
    select
}

/// One keyset page of `select` (the tenant's rows an aggregate's filter picked), in the
/// order of `spec`, each row with its cursor.
/// Only the columns of `projection` are fetched (and the id and sort column, when the
/// cursors are read).
pub async fn list<A>(
    t: &Tenant,
    select: Select<A::Entity>,
    spec: SortSpec<<A::Entity as EntityTrait>::Column>,
    args: &PageArgs,
    projection: Projection<A::Entity>,
) -> Result<Slice<A>>
where
    A: Aggregate + Sortable<Column = <A::Entity as EntityTrait>::Column>,
    A::Entity: Projected<Record = A>,
{
    let page = args.validate(&spec)?;
    let projection = page.projection(&spec, projection).or(A::id_column());
    let select = page_query(select, &spec, &page, projection);
    let statement = t.db().get_database_backend().build(&select);
    let fetched = t.db().query_all_raw(statement).await?;
    let mut rows = Vec::with_capacity(fetched.len());
    for row in fetched {
        let record = A::Entity::decode(projection, &row)?;
        rows.push((page.cursor(&spec, &record), record));
    }
    Ok(page.finish(rows))
}
