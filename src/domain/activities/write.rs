//! Activity writes: one transaction each, with its event, and the customer's
//! `last_activity_at` recomputed in the same transaction.

use entity::{activities, customers};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect, Set,
};

use super::scope::live;
use super::validate;
use super::{Activity, ActivityPatch, NewActivity};
use crate::auth::Principal;
use crate::domain::ids::{IdKind, new_id};
use crate::domain::versioning;
use crate::domain::{Error, Result, Store, ViolationCode, is_unique_violation, now, users};
use crate::events::{self, NewEvent, Op};

use activities::Column as C;

pub async fn log(store: &Store, who: &Principal, input: NewActivity) -> Result<Activity> {
    let input = validate::new_activity(input)?;
    let txn = store.write().await?;
    let customer_exists = customers::Entity::find()
        .filter(customers::Column::Id.eq(&input.customer_id))
        .filter(customers::Column::OrgId.eq(&who.org))
        .filter(customers::Column::DeletedAt.is_null())
        .one(&*txn)
        .await?
        .is_some();
    if !customer_exists {
        return Err(Error::invalid(
            &["customerId"],
            ViolationCode::NotFound,
            "no such customer",
        ));
    }
    let author = users::ensure(store, &txn, who).await?;
    let at = now();
    let model = activities::ActiveModel {
        id: Set(new_id(IdKind::Activity)),
        org_id: Set(who.org.clone()),
        customer_id: Set(input.customer_id.clone()),
        kind: Set(input.kind.as_str().to_owned()),
        subject: Set(input.subject),
        body: Set(input.body),
        occurred_at: Set(input.occurred_at.unwrap_or(at)),
        due_at: Set(input.due_at),
        completed_at: Set(input.completed_at),
        author_id: Set(Some(author)),
        source: Set(input.source),
        external_id: Set(input.external_id),
        version: Set(1),
        created_at: Set(at),
        updated_at: Set(at),
        deleted_at: Set(None),
    }
    .insert(&*txn)
    .await
    .map_err(|err| {
        if is_unique_violation(&err) {
            Error::invalid(
                &["externalId"],
                ViolationCode::Duplicate,
                "an activity with this source and external id exists",
            )
        } else {
            err.into()
        }
    })?;
    refresh_last_activity(&txn, &who.org, &model.customer_id).await?;
    let activity = Activity::try_from(model)?;
    let snapshot = serde_json::to_value(&activity)?;
    append(
        &txn,
        who,
        &activity,
        Op::Created,
        events::all_fields(&snapshot, Activity::field_name),
        snapshot,
    )
    .await?;
    store.commit(txn).await?;
    Ok(activity)
}

pub async fn update(
    store: &Store,
    who: &Principal,
    id: &str,
    patch: ActivityPatch,
) -> Result<Activity> {
    let patch = validate::patch(patch)?;
    let txn = store.write().await?;
    let before = live_row(&txn, &who.org, id).await?;
    versioning::check(patch.expected_version, before.version)?;
    let mut after = before.clone();
    if let Some(kind) = patch.kind {
        after.kind = kind.as_str().to_owned();
    }
    if let Some(subject) = patch.subject {
        after.subject = subject;
    }
    if let Some(body) = patch.body {
        after.body = body;
    }
    if let Some(t) = patch.occurred_at {
        after.occurred_at = t;
    }
    if let Some(t) = patch.due_at {
        after.due_at = t;
    }
    if let Some(t) = patch.completed_at {
        after.completed_at = t;
    }
    let old = Activity::try_from(before.clone())?;
    let changed = changed_fields(&old, &Activity::try_from(after.clone())?)?;
    if changed.is_empty() {
        store.commit(txn).await?;
        return Ok(old);
    }
    after.version = before.version + 1;
    after.updated_at = now();
    let activity = save(&txn, &before, after).await?;
    if changed.iter().any(|f| f == "occurredAt") {
        refresh_last_activity(&txn, &who.org, &activity.customer_id).await?;
    }
    let snapshot = serde_json::to_value(&activity)?;
    append(&txn, who, &activity, Op::Updated, changed, snapshot).await?;
    store.commit(txn).await?;
    Ok(activity)
}

pub async fn delete(
    store: &Store,
    who: &Principal,
    id: &str,
    expected_version: Option<i32>,
) -> Result<Activity> {
    let txn = store.write().await?;
    let before = live_row(&txn, &who.org, id).await?;
    versioning::check(expected_version, before.version)?;
    let mut after = before.clone();
    let at = now();
    after.deleted_at = Some(at);
    after.updated_at = at;
    after.version = before.version + 1;
    let activity = save(&txn, &before, after).await?;
    refresh_last_activity(&txn, &who.org, &activity.customer_id).await?;
    // `Activity` does not expose `deletedAt`: the op alone tells of the deletion.
    let changed = changed_fields(&Activity::try_from(before)?, &activity)?;
    let snapshot = serde_json::to_value(&activity)?;
    append(&txn, who, &activity, Op::Deleted, changed, snapshot).await?;
    store.commit(txn).await?;
    Ok(activity)
}

/// The `changedFields` of a write from `before` to `after`: GraphQL field names.
fn changed_fields(before: &Activity, after: &Activity) -> Result<Vec<String>> {
    Ok(events::changed_fields(
        &serde_json::to_value(before)?,
        &serde_json::to_value(after)?,
        Activity::field_name,
    ))
}

async fn live_row(txn: &DatabaseTransaction, org: &str, id: &str) -> Result<activities::Model> {
    live(org)
        .filter(C::Id.eq(id))
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(Error::NotFound)
}

async fn save(
    txn: &DatabaseTransaction,
    before: &activities::Model,
    after: activities::Model,
) -> Result<Activity> {
    let result = activities::Entity::update_many()
        .set(activities::ActiveModel::from(after.clone()).reset_all())
        .filter(C::Id.eq(&before.id))
        .filter(C::OrgId.eq(&before.org_id))
        .filter(C::Version.eq(before.version))
        .exec(txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(versioning::conflict(before.version + 1));
    }
    Activity::try_from(after)
}

/// Recomputes the customer's `last_activity_at` from its live activities, so deletes and
/// back-dated edits keep it true.
async fn refresh_last_activity(
    txn: &DatabaseTransaction,
    org: &str,
    customer_id: &str,
) -> Result<()> {
    let latest = Query::select()
        .expr(Func::max(Expr::col(C::OccurredAt)))
        .from(activities::Entity)
        .and_where(Expr::col(C::OrgId).eq(org))
        .and_where(Expr::col(C::CustomerId).eq(customer_id))
        .and_where(Expr::col(C::DeletedAt).is_null())
        .to_owned();
    customers::Entity::update_many()
        .col_expr(
            customers::Column::LastActivityAt,
            Expr::SubQuery(None, Box::new(latest.into())),
        )
        .filter(customers::Column::Id.eq(customer_id))
        .filter(customers::Column::OrgId.eq(org))
        .exec(txn)
        .await?;
    Ok(())
}

async fn append(
    txn: &DatabaseTransaction,
    who: &Principal,
    activity: &Activity,
    op: Op,
    changed_fields: Vec<String>,
    snapshot: serde_json::Value,
) -> Result<()> {
    events::append(
        txn,
        NewEvent {
            org: &who.org,
            entity: "activity",
            entity_id: &activity.id,
            op,
            changed_fields,
            snapshot,
            actor: &who.sub,
            at: activity.updated_at,
        },
    )
    .await?;
    Ok(())
}
