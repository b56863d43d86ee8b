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
//! each creation appends its `CREATED` event, in the one write transaction. Upserts of one
//! tenant and source take turns (the SQLite writer slot; an advisory lock on PostgreSQL),
//! so the same new key sent twice at once is created once and then found.

use std::collections::{HashMap, HashSet};

use entity::{customer_external_ids, customers, users};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::Value;

use super::scope::scoped;
use super::validate;
use super::{Customer, CustomerPatch, LifecycleStage};
use crate::domain::aggregate::{all_fields, append, write_next};
use crate::domain::ids::{CustomerId, IdKind, new_id};
use crate::domain::validate as v;
use crate::domain::{
    Error, FieldViolation, Result, Tenant, ViolationCode, WriteTxn, now, users as domain_users,
};
use crate::events::Op;

/// The most items one call may carry.
pub const MAX_UPSERT_ITEMS: usize = 1_000;
/// The longest `source` (as for the external ids of `createCustomer`).
const SOURCE_MAX: usize = 64;
/// The longest external id.
const EXTERNAL_ID_MAX: usize = 255;

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
    pub external_id: String,
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
    /// The external id as the item gave it.
    pub external_id: String,
    pub status: UpsertStatus,
    /// The customer as the call left it; `None` for an invalid item.
    pub customer: Option<Customer>,
    /// Why an item is invalid; paths start below the mutation's `input`.
    pub violations: Vec<FieldViolation>,
}

impl UpsertResult {
    fn invalid(external_id: String, violations: Vec<FieldViolation>) -> Self {
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
    key: String,
    patch: CustomerPatch,
}

pub async fn upsert(t: &Tenant, input: Upsert) -> Result<Vec<UpsertResult>> {
    if input.items.len() > MAX_UPSERT_ITEMS {
        return Err(Error::BadArgument(format!(
            "`items` holds {} items; at most {MAX_UPSERT_ITEMS} may be upserted in one call: send the rest in another",
            input.items.len()
        )));
    }
    // Lower-cased first, then measured: some letters grow when lower-cased (`İ`).
    let source = v::required_text("source", &input.source.to_lowercase(), SOURCE_MAX)
        .map_err(|violation| Error::Invalid(vec![violation]))?;
    let (mut results, mut planned) = plan(input.items)?;
    if planned.is_empty() {
        return Ok(results);
    }

    let txn = t.store().write().await?;
    serialize_per_source(&txn, t, &source).await?;
    let actor = domain_users::ensure(t, &txn).await?;
    let owners = known_owners(&txn, t, &planned).await?;
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
    let matched = matched_ids(&txn, t, &source, &planned).await?;
    let mut rows = locked_customers(&txn, t, matched.values()).await?;

    let at = now();
    for item in planned {
        let index = item.index;
        let result = match matched.get(&item.key) {
            Some(customer_id) => update(&txn, t, &mut rows, customer_id, item, at).await?,
            None => create(&txn, t, &source, &actor, item, at).await?,
        };
        match result {
            Ok((status, customer)) => {
                results[index].status = status;
                results[index].customer = Some(customer);
            }
            Err(violation) => results[index].violations.push(violation),
        }
    }
    t.store().commit(txn).await?;
    Ok(results)
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
        let key = match v::required_text("externalId", &item.external_id, EXTERNAL_ID_MAX) {
            Ok(key) if !seen.insert(key.clone()) => {
                violations.push(FieldViolation::new(
                    &["externalId"],
                    ViolationCode::Duplicate,
                    "is given to an earlier item of this call",
                ));
                None
            }
            Ok(key) => Some(key),
            Err(violation) => {
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
    let named: HashSet<&String> = planned
        .iter()
        .filter_map(|item| item.patch.owner_id.as_ref()?.as_ref())
        .collect();
    if named.is_empty() {
        return Ok(HashSet::new());
    }
    let found = t
        .find::<users::Entity>()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Id.is_in(named.into_iter().cloned()))
        .into_tuple::<String>()
        .all(txn)
        .await?;
    Ok(found.into_iter().collect())
}

/// The customer each item's key names in `source`, if any: one statement for them all.
async fn matched_ids(
    txn: &DatabaseTransaction,
    t: &Tenant,
    source: &str,
    planned: &[Planned],
) -> Result<HashMap<String, String>> {
    use customer_external_ids::Column as X;
    let found = t
        .find::<customer_external_ids::Entity>()
        .select_only()
        .column(X::ExternalId)
        .column(X::CustomerId)
        .filter(X::Source.eq(source))
        .filter(X::ExternalId.is_in(planned.iter().map(|item| item.key.clone())))
        .into_tuple::<(String, String)>()
        .all(txn)
        .await?;
    Ok(found.into_iter().collect())
}

/// The matched customers (live or in the trash), locked for the rest of the transaction, in
/// id order so that two upserts touching the same customers lock them in the same order.
async fn locked_customers(
    txn: &DatabaseTransaction,
    t: &Tenant,
    ids: impl Iterator<Item = &String>,
) -> Result<HashMap<String, customers::Model>> {
    let ids: HashSet<&String> = ids.collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found = scoped(t)
        .filter(customers::Column::Id.is_in(ids.into_iter().cloned()))
        .order_by_asc(customers::Column::Id)
        .lock_exclusive()
        .all(txn)
        .await?;
    Ok(found.into_iter().map(|m| (m.id.clone(), m)).collect())
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

async fn create(
    txn: &WriteTxn,
    t: &Tenant,
    source: &str,
    actor: &str,
    item: Planned,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome> {
    let patch = item.patch;
    let id = CustomerId::mint().into_string();
    let model = t
        .stamp(customers::ActiveModel {
            id: Set(id.clone()),
            // Checked by `validate::patch`; never empty here.
            name: Set(patch.name.unwrap_or_default()),
            email: Set(patch.email.flatten()),
            phone: Set(patch.phone.flatten()),
            company: Set(patch.company.flatten()),
            lifecycle_stage: Set(patch
                .lifecycle_stage
                .unwrap_or(LifecycleStage::Lead)
                .as_str()
                .to_owned()),
            owner_id: Set(patch.owner_id.unwrap_or_else(|| Some(actor.to_owned()))),
            tags: Set(serde_json::to_string(&patch.tags.unwrap_or_default())?),
            custom_fields: Set(patch
                .custom_fields
                .unwrap_or_else(|| Value::Object(Default::default()))),
            version: Set(1),
            last_activity_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            deleted_at: Set(None),
            ..Default::default()
        })
        .insert(&**txn)
        .await?;
    // The key is claimed without failing the transaction: a concurrent upsert (on
    // PostgreSQL) that gave it to another customer first makes this item invalid, not the
    // call.
    use customer_external_ids::Column as X;
    let key = t.stamp(customer_external_ids::ActiveModel {
        id: Set(new_id(IdKind::ExternalId)),
        customer_id: Set(id.clone()),
        source: Set(source.to_owned()),
        external_id: Set(item.key),
        created_at: Set(at),
        ..Default::default()
    });
    let claimed = customer_external_ids::Entity::insert(key)
        .on_conflict(
            OnConflict::columns([X::OrgId, X::Source, X::ExternalId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&**txn)
        .await?;
    if claimed == 0 {
        t.delete::<customers::Entity>()
            .filter(customers::Column::Id.eq(id))
            .exec(&**txn)
            .await?;
        return Ok(Err(FieldViolation::new(
            &["externalId"],
            ViolationCode::Duplicate,
            "was given to another customer by a concurrent write; send the item again",
        )
        .under(&at_item(item.index))));
    }
    let customer = Customer::try_from(model)?;
    let mut fields = all_fields(&customer)?;
    fields.push("externalIds".to_owned());
    fields.sort();
    append(&**txn, t.who(), &customer, Op::Created, fields).await?;
    Ok(Ok((UpsertStatus::Created, customer)))
}
