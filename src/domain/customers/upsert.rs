//! Bulk upsert by external id: integrations push their records keyed by their own ids, and
//! each is created, updated, left alone or refused, all in one transaction.
//!
//! An item that is invalid (a bad field, an owner that does not exist, an external id given
//! twice in the call or held by a customer in the trash) is reported and skipped; the others
//! are still written. A sync run then lands everything it can and names what it must fix,
//! rather than failing whole on one bad row and leaving the client to bisect a thousand.
//! Whatever is not about one item (too many items, a bad `source`, a database failure)
//! fails the call and writes nothing.
//!
//! Writes go through the aggregate machinery like any other: matched customers are locked
//! (in id order, so concurrent upserts cannot deadlock), each update is `write_next` (a new
//! version and an `UPDATED` event with its `changedFields` only when something differs), and
//! each creation appends its `CREATED` event, in the one write transaction. Creations are
//! written in bulk: multi-row inserts of the customers, of their keys (claimed with
//! `ON CONFLICT DO NOTHING`, learning which were taken through `RETURNING`) and of their
//! events, a few statements per thousand items rather than three per item. Upserts of one
//! tenant and source take turns (the SQLite writer slot; an advisory lock on PostgreSQL),
//! so the same new key sent twice at once is created once and then found.
//!
//! [`upsert`] is the call of the API: at most [`MAX_UPSERT_ITEMS`], its own transaction.
//! [`upsert_in`] runs the same within a write the caller holds (`crm import` commits a chunk
//! at a time, or the whole file at once, or rolls back a dry run), and also takes items
//! without a key, which are always created.

use std::collections::{HashMap, HashSet};

use entity::{customer_external_ids, customers, users};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityName,
    EntityTrait, IdenStatic, Iterable, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;

use super::scope::scoped;
use super::validate;
use super::{Customer, CustomerPatch, LifecycleStage};
use crate::domain::aggregate::{all_fields, event, write_next};
use crate::domain::ids::{CustomerId, IdKind, new_id};
use crate::domain::validate as v;
use crate::domain::{
    Error, FieldViolation, Result, Tenant, ViolationCode, WriteTxn, now, users as domain_users,
};
use crate::events::{self, Op};

/// The most items one call may carry.
pub const MAX_UPSERT_ITEMS: usize = 1_000;
/// The longest `source` (as for the external ids of `createCustomer`).
const SOURCE_MAX: usize = 64;
/// The longest external id.
const EXTERNAL_ID_MAX: usize = 255;
/// The most bound parameters one multi-row insert carries: within SQLite's 32,766 and
/// PostgreSQL's 65,535.
const MAX_PARAMS: usize = 30_000;

/// A bulk upsert: items keyed by their id in `source`.
#[derive(Clone, Debug, Default)]
pub struct Upsert {
    pub source: String,
    pub items: Vec<UpsertItem>,
}

/// One record to create or update. On creation, a field left out takes the default of
/// `createCustomer`; on update, it stays as it is. `Some(None)` clears a nullable field.
#[derive(Clone, Debug, Default)]
pub struct UpsertItem {
    /// The key in `source`. `None` (only through [`upsert_in`], for imports) creates the
    /// customer without a key, every time.
    pub external_id: Option<String>,
    pub name: String,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Left out: the caller on creation. `Some(None)`: no owner.
    pub owner_id: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub custom_fields: Option<Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpsertStatus {
    Created,
    Updated,
    /// Matched, and already as given: nothing written, no event.
    Unchanged,
    /// Refused (see its violations) and skipped; the other items were still written.
    Invalid,
}

/// What became of one item, in the order of the items.
#[derive(Clone, Debug)]
pub struct UpsertResult {
    /// The external id as the item gave it (`None`: it had none).
    pub external_id: Option<String>,
    pub status: UpsertStatus,
    /// The customer as the call left it; `None` for an invalid item.
    pub customer: Option<Customer>,
    /// Why an item is invalid; paths start below the mutation's `input`.
    pub violations: Vec<FieldViolation>,
}

impl UpsertResult {
    fn invalid(external_id: Option<String>, violations: Vec<FieldViolation>) -> Self {
        Self {
            external_id,
            status: UpsertStatus::Invalid,
            customer: None,
            violations,
        }
    }
}

/// A valid item, ready to be written.
struct Planned {
    index: usize,
    /// `None`: created without a key.
    key: Option<String>,
    patch: CustomerPatch,
}

/// An upsert checked by the input rules, which need no database: its source, a result
/// per item (each `Invalid` until written) and the items that may be written, for
/// [`upsert_in`] to write. Checking is CPU work (parsing phone numbers above all), which a
/// bulk writer may do on another thread than the one holding the transaction.
pub struct CheckedUpsert {
    source: String,
    results: Vec<UpsertResult>,
    planned: Vec<Planned>,
}

impl CheckedUpsert {
    /// Checks the source (refused as a whole: `Error::Invalid`) and every item (an invalid
    /// one is only marked so). Any number of items.
    pub fn new(input: Upsert) -> Result<Self> {
        // Lower-cased first, then measured: some letters grow when lower-cased (`İ`).
        let source = v::required_text("source", &input.source.to_lowercase(), SOURCE_MAX)
            .map_err(|violation| Error::Invalid(vec![violation]))?;
        let (results, planned) = plan(input.items)?;
        Ok(Self {
            source,
            results,
            planned,
        })
    }
}

pub async fn upsert(t: &Tenant, input: Upsert) -> Result<Vec<UpsertResult>> {
    if input.items.len() > MAX_UPSERT_ITEMS {
        return Err(Error::BadArgument(format!(
            "`items` holds {} items; at most {MAX_UPSERT_ITEMS} may be upserted in one call: send the rest in another",
            input.items.len()
        )));
    }
    let checked = CheckedUpsert::new(input)?;
    if checked.planned.is_empty() {
        return Ok(checked.results);
    }
    let txn = t.store().write().await?;
    let results = write(&txn, t, checked).await?;
    t.store().commit(txn).await?;
    Ok(results)
}

/// The upsert of checked items within a write transaction the caller holds and ends:
/// committed (with `t.store().commit(txn)`, which also wakes the event consumers) or rolled
/// back (dropped). Any number of items (the statements are chunked); an item without an
/// external id is created. As with [`upsert`], an invalid item is skipped and the others are
/// written; an error (a database failure) leaves the transaction to be dropped.
pub async fn upsert_in(
    txn: &WriteTxn,
    t: &Tenant,
    checked: CheckedUpsert,
) -> Result<Vec<UpsertResult>> {
    if checked.planned.is_empty() {
        return Ok(checked.results);
    }
    write(txn, t, checked).await
}

/// Writes the checked items: the database's own checks (owners, keys in the trash, keys
/// claimed meanwhile), then the updates one by one and the creations in bulk.
async fn write(txn: &WriteTxn, t: &Tenant, checked: CheckedUpsert) -> Result<Vec<UpsertResult>> {
    let CheckedUpsert {
        source,
        mut results,
        mut planned,
    } = checked;
    serialize_per_source(txn, t, &source).await?;
    let actor = domain_users::ensure(t, txn).await?;
    let owners = known_owners(txn, t, &planned).await?;
    planned.retain(|item| match &item.patch.owner_id {
        Some(Some(owner)) if !owners.contains(owner) => {
            let at = at_item(item.index);
            results[item.index].violations.push(
                FieldViolation::new(&["ownerId"], ViolationCode::NotFound, "no such user")
                    .under(&at),
            );
            false
        }
        _ => true,
    });
    let matched = matched_ids(txn, t, &source, &planned).await?;
    let (updates, creations): (Vec<Planned>, Vec<Planned>) = planned
        .into_iter()
        .partition(|item| matches!(&item.key, Some(key) if matched.contains_key(key)));

    let at = now();
    let mut outcomes = Vec::with_capacity(updates.len() + creations.len());
    if !updates.is_empty() {
        let mut rows = locked_customers(txn, t, matched.values()).await?;
        for item in updates {
            let Some(customer_id) = item.key.as_ref().and_then(|key| matched.get(key)) else {
                continue;
            };
            let index = item.index;
            outcomes.push((
                index,
                update(txn, t, &mut rows, customer_id, item, at).await?,
            ));
        }
    }
    outcomes.extend(create_all(txn, t, &source, &actor, creations, at).await?);
    for (index, outcome) in outcomes {
        match outcome {
            Ok((status, customer)) => {
                results[index].status = status;
                results[index].customer = Some(customer);
            }
            Err(violation) => results[index].violations.push(violation),
        }
    }
    Ok(results)
}

/// Fresh planner statistics for the tables an upsert reads by key, within the caller's
/// write (PostgreSQL counts the rows the transaction itself wrote); nothing on SQLite. A
/// bulk load calls it now and then: without statistics, PostgreSQL takes a freshly filled
/// table for a small one and finds keys by scanning the tenant's rows, so each chunk of a
/// long import would take longer than the one before.
pub async fn refresh_statistics(txn: &WriteTxn) -> Result<()> {
    analyze(&**txn).await
}

/// The same outside any transaction, for a load that commits as it goes: its `ANALYZE`
/// holds its lock only while it runs.
pub async fn refresh_statistics_now(t: &Tenant) -> Result<()> {
    analyze(t.db()).await
}

async fn analyze(conn: &impl ConnectionTrait) -> Result<()> {
    if conn.get_database_backend() == DbBackend::Postgres {
        conn.execute_unprepared("ANALYZE customers, customer_external_ids")
            .await?;
    }
    Ok(())
}

/// On PostgreSQL, upserts of one tenant and source take turns (a lock held to the end of
/// the transaction), as every write does on SQLite: two calls carrying the same new keys
/// would otherwise both miss them and race to create them, in orders that can deadlock.
/// Upserts of other sources, and every other write, go on beside them.
async fn serialize_per_source(txn: &DatabaseTransaction, t: &Tenant, source: &str) -> Result<()> {
    let backend = txn.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(());
    }
    let key = format!("upsertCustomers\u{1f}{}\u{1f}{source}", t.org());
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [key.into()],
    ))
    .await?;
    Ok(())
}

fn at_item(index: usize) -> Vec<String> {
    vec!["items".to_owned(), index.to_string()]
}

/// Every item checked on its own (and against the items before it): the results, each
/// `Invalid` until written, and the items that may be written.
fn plan(items: Vec<UpsertItem>) -> Result<(Vec<UpsertResult>, Vec<Planned>)> {
    let mut results = Vec::with_capacity(items.len());
    let mut planned = Vec::with_capacity(items.len());
    let mut seen = HashSet::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let mut violations = Vec::new();
        let checked_key = item
            .external_id
            .as_deref()
            .map(|raw| v::required_text("externalId", raw, EXTERNAL_ID_MAX));
        let key = match checked_key {
            // No key: always created.
            None => Some(None),
            Some(Ok(key)) if !seen.insert(key.clone()) => {
                violations.push(FieldViolation::new(
                    &["externalId"],
                    ViolationCode::Duplicate,
                    "is given to an earlier item of this call",
                ));
                None
            }
            Some(Ok(key)) => Some(Some(key)),
            Some(Err(violation)) => {
                violations.push(violation);
                None
            }
        };
        let patch = CustomerPatch {
            expected_version: None,
            name: Some(item.name),
            email: item.email,
            phone: item.phone,
            company: item.company,
            lifecycle_stage: item.lifecycle_stage,
            owner_id: item.owner_id,
            tags: item.tags,
            custom_fields: item.custom_fields,
            external_ids: None,
            social_profiles: None,
        };
        // The rules of `createCustomer` and `updateCustomer`: the same function checks both.
        let patch = match validate::patch(patch) {
            Ok(patch) => Some(patch),
            Err(Error::Invalid(found)) => {
                violations.extend(found);
                None
            }
            Err(other) => return Err(other),
        };
        let at = at_item(index);
        let violations = violations
            .into_iter()
            .map(|found| found.under(&at))
            .collect();
        results.push(UpsertResult::invalid(item.external_id, violations));
        if let (Some(key), Some(patch)) = (key, patch) {
            planned.push(Planned { index, key, patch });
        }
    }
    Ok((results, planned))
}

/// The owners the items name that are users of the tenant: one statement for them all.
async fn known_owners(
    txn: &DatabaseTransaction,
    t: &Tenant,
    planned: &[Planned],
) -> Result<HashSet<String>> {
    let named: Vec<&String> = planned
        .iter()
        .filter_map(|item| item.patch.owner_id.as_ref()?.as_ref())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut known = HashSet::new();
    for chunk in named.chunks(MAX_PARAMS) {
        let found = t
            .find::<users::Entity>()
            .select_only()
            .column(users::Column::Id)
            .filter(users::Column::Id.is_in(chunk.iter().map(|id| (*id).clone())))
            .into_tuple::<String>()
            .all(txn)
            .await?;
        known.extend(found);
    }
    Ok(known)
}

/// The customer each item's key names in `source`, if any: one statement for them all.
async fn matched_ids(
    txn: &DatabaseTransaction,
    t: &Tenant,
    source: &str,
    planned: &[Planned],
) -> Result<HashMap<String, String>> {
    use customer_external_ids::Column as X;
    let keys: Vec<&String> = planned
        .iter()
        .filter_map(|item| item.key.as_ref())
        .collect();
    let mut matched = HashMap::new();
    for chunk in keys.chunks(MAX_PARAMS) {
        let found = t
            .find::<customer_external_ids::Entity>()
            .select_only()
            .column(X::ExternalId)
            .column(X::CustomerId)
            .filter(X::Source.eq(source))
            .filter(X::ExternalId.is_in(chunk.iter().map(|key| (*key).clone())))
            .into_tuple::<(String, String)>()
            .all(txn)
            .await?;
        matched.extend(found);
    }
    Ok(matched)
}

/// The matched customers (live or in the trash), locked for the rest of the transaction, in
/// id order so that two upserts touching the same customers lock them in the same order.
async fn locked_customers(
    txn: &DatabaseTransaction,
    t: &Tenant,
    ids: impl Iterator<Item = &String>,
) -> Result<HashMap<String, customers::Model>> {
    let mut ids: Vec<&String> = ids.collect::<HashSet<_>>().into_iter().collect();
    ids.sort_unstable();
    let mut locked = HashMap::with_capacity(ids.len());
    // In id order across the chunks too.
    for chunk in ids.chunks(MAX_PARAMS) {
        let found = scoped(t)
            .filter(customers::Column::Id.is_in(chunk.iter().map(|id| (*id).clone())))
            .order_by_asc(customers::Column::Id)
            .lock_exclusive()
            .all(txn)
            .await?;
        locked.extend(found.into_iter().map(|m| (m.id.clone(), m)));
    }
    Ok(locked)
}

/// What became of one item that passed the checks: written (with its status), or refused
/// for a reason only the database could tell.
type Outcome = std::result::Result<(UpsertStatus, Customer), FieldViolation>;

async fn update(
    txn: &WriteTxn,
    t: &Tenant,
    rows: &mut HashMap<String, customers::Model>,
    customer_id: &str,
    item: Planned,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome> {
    let Some(before) = rows.get(customer_id).cloned() else {
        return Err(Error::Internal(
            "an external id names a customer that is not there".into(),
        ));
    };
    if before.deleted_at.is_some() {
        return Ok(Err(FieldViolation::new(
            &["externalId"],
            ViolationCode::Invalid,
            "belongs to a customer in the trash: restore it (restoreCustomer) to update it",
        )
        .under(&at_item(item.index))));
    }
    let mut patch = item.patch;
    let mut after = before.clone();
    super::write::apply_own_fields(&mut patch, &mut after)?;
    // Owners were checked for the whole call beforehand.
    if let Some(owner) = patch.owner_id {
        after.owner_id = owner;
    }
    let version = before.version;
    let customer: Customer =
        write_next(txn, t, before, after.clone(), at, Op::Updated, &[]).await?;
    if customer.version == version {
        return Ok(Ok((UpsertStatus::Unchanged, customer)));
    }
    // Two keys of one customer in one call: the next item starts from this version.
    after.version = customer.version;
    after.updated_at = customer.updated_at;
    rows.insert(customer_id.to_owned(), after);
    Ok(Ok((UpsertStatus::Updated, customer)))
}

/// The new customers, written in bulk: the customers, then their keys (a key another
/// customer claimed meanwhile, a concurrent write on PostgreSQL, makes its item invalid and
/// its customer is removed again), then the `CREATED` events of those kept, in item order.
async fn create_all(
    txn: &WriteTxn,
    t: &Tenant,
    source: &str,
    actor: &str,
    items: Vec<Planned>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(usize, Outcome)>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let mut created = Vec::with_capacity(items.len());
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let customer = new_customer(t, actor, item.patch, at);
        rows.push(t.stamp(customer.clone().into_row()?));
        created.push((item.index, item.key, customer));
    }
    // Every new customer has the same fields, so one list serves them all.
    let fields = match created.first() {
        Some((_, _, customer)) => all_fields(customer)?,
        None => Vec::new(),
    };
    let mut keyed = fields.clone();
    keyed.push("externalIds".to_owned());
    keyed.sort();
    let changed = |key: &Option<String>| if key.is_some() { &keyed } else { &fields };

    // The keys and the events are made while the database inserts the customers: the
    // insert is sent first, then this thread goes on with them as the database works.
    let made = async {
        let keys: Vec<customer_external_ids::ActiveModel> = created
            .iter()
            .filter_map(|(_, key, customer)| {
                Some(t.stamp(customer_external_ids::ActiveModel {
                    id: Set(new_id(IdKind::ExternalId)),
                    customer_id: Set(customer.id.as_ref().to_owned()),
                    source: Set(source.to_owned()),
                    external_id: Set(key.clone()?),
                    created_at: Set(at),
                    ..Default::default()
                }))
            })
            .collect();
        let mut events = Vec::with_capacity(created.len());
        for (_, key, customer) in &created {
            events.push(events::row(event(
                t.who(),
                customer,
                Op::Created,
                changed(key).clone(),
            )?));
        }
        Ok::<_, Error>((keys, events))
    };
    let (inserted, made) = futures_util::join!(insert_all(txn, rows), made);
    inserted?;
    let (keys, event_rows) = made?;

    let claimed = claim_keys(txn, keys).await?;
    let (kept, lost): (Vec<_>, Vec<_>) =
        created
            .into_iter()
            .zip(event_rows)
            .partition(|((_, key, customer), _)| {
                key.is_none() || claimed.contains(customer.id.as_ref())
            });
    let mut outcomes = Vec::with_capacity(kept.len() + lost.len());
    if !lost.is_empty() {
        let ids: Vec<String> = lost
            .iter()
            .map(|((_, _, customer), _)| customer.id.as_ref().to_owned())
            .collect();
        for chunk in ids.chunks(MAX_PARAMS) {
            t.delete::<customers::Entity>()
                .filter(customers::Column::Id.is_in(chunk.iter().cloned()))
                .exec(&**txn)
                .await?;
        }
        outcomes.extend(lost.into_iter().map(|((index, _, _), _)| {
            let violation = FieldViolation::new(
                &["externalId"],
                ViolationCode::Duplicate,
                "was given to another customer by a concurrent write; send the item again",
            )
            .under(&at_item(index));
            (index, Err(violation))
        }));
    }

    // The events in item order, the last through `events::append`, which also wakes the
    // other instances on PostgreSQL (`NOTIFY`, delivered at commit).
    let (created, mut event_rows): (Vec<_>, Vec<_>) = kept.into_iter().unzip();
    event_rows.pop();
    insert_all(txn, event_rows).await?;
    if let Some((_, key, customer)) = created.last() {
        let last = event(t.who(), customer, Op::Created, changed(key).clone())?;
        events::append(&**txn, last).await?;
    }
    outcomes.extend(
        created
            .into_iter()
            .map(|(index, _, customer)| (index, Ok((UpsertStatus::Created, customer)))),
    );
    Ok(outcomes)
}

/// A new customer as `createCustomer` makes it: a field left out takes its default, the
/// owner is the acting user.
fn new_customer(
    t: &Tenant,
    actor: &str,
    patch: CustomerPatch,
    at: chrono::DateTime<chrono::Utc>,
) -> Customer {
    Customer {
        id: CustomerId::mint(),
        org_id: t.org().as_str().to_owned(),
        // Checked by `validate::patch`; never empty here.
        name: patch.name.unwrap_or_default(),
        email: patch.email.flatten(),
        phone: patch.phone.flatten(),
        company: patch.company.flatten(),
        lifecycle_stage: patch.lifecycle_stage.unwrap_or(LifecycleStage::Lead),
        owner_id: patch.owner_id.unwrap_or_else(|| Some(actor.to_owned())),
        tags: patch.tags.unwrap_or_default(),
        custom_fields: patch
            .custom_fields
            .unwrap_or_else(|| Value::Object(Default::default())),
        version: 1,
        last_activity_at: None,
        created_at: at,
        updated_at: at,
        deleted_at: None,
    }
}

/// Multi-row `INSERT`s of active models (every row setting the same columns), written
/// directly: the SQL text is made once per statement and the values are moved in, without
/// a query builder's tree per value (which cost more than the database's own work here).
/// As many rows a statement as the parameter limit allows; `suffix` ends each statement.
fn inserts<A>(backend: DbBackend, rows: Vec<A>, suffix: &str) -> Result<Vec<Statement>>
where
    A: ActiveModelTrait,
{
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let columns: Vec<<A::Entity as EntityTrait>::Column> =
        <A::Entity as EntityTrait>::Column::iter()
            .filter(|column| first.get(*column).is_set())
            .collect();
    let names: Vec<String> = columns
        .iter()
        .map(|column| format!("\"{}\"", column.as_str()))
        .collect();
    let head = format!(
        "INSERT INTO \"{}\" ({}) VALUES ",
        <A::Entity as Default>::default().table_name(),
        names.join(", ")
    );
    let per = (MAX_PARAMS / columns.len().max(1)).max(1);
    let mut statements = Vec::with_capacity(rows.len().div_ceil(per));
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let mut sql = head.clone();
        let mut values = Vec::with_capacity(per * columns.len());
        for (i, mut row) in rows.by_ref().take(per).enumerate() {
            sql.push_str(if i == 0 { "(" } else { ", (" });
            for (j, column) in columns.iter().enumerate() {
                let value = row.take(*column).into_value().ok_or_else(|| {
                    Error::Internal("a row of a bulk insert leaves a column unset".into())
                })?;
                values.push(value);
                if j > 0 {
                    sql.push_str(", ");
                }
                match backend {
                    DbBackend::Postgres => {
                        sql.push('$');
                        sql.push_str(&values.len().to_string());
                    }
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql.push_str(suffix);
        statements.push(Statement::from_sql_and_values(backend, sql, values));
    }
    Ok(statements)
}

/// Inserts the rows, as few statements as the parameter limit allows.
async fn insert_all<A>(txn: &WriteTxn, rows: Vec<A>) -> Result<()>
where
    A: ActiveModelTrait,
{
    for statement in inserts(txn.get_database_backend(), rows, "")? {
        txn.execute_raw(statement).await?;
    }
    Ok(())
}

/// Claims the keys without failing the transaction (`ON CONFLICT DO NOTHING`): the ids of
/// the customers whose key is now theirs.
async fn claim_keys(
    txn: &WriteTxn,
    keys: Vec<customer_external_ids::ActiveModel>,
) -> Result<HashSet<String>> {
    const CLAIM: &str = " ON CONFLICT (\"org_id\", \"source\", \"external_id\") DO NOTHING RETURNING \"customer_id\"";
    let mut claimed = HashSet::with_capacity(keys.len());
    for statement in inserts(txn.get_database_backend(), keys, CLAIM)? {
        for row in txn.query_all_raw(statement).await? {
            claimed.insert(row.try_get::<String>("", "customer_id")?);
        }
    }
    Ok(claimed)
}
