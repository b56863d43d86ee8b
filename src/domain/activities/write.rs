//! Activity writes: one transaction each, with its event, and the customer's
//! `last_activity_at` recomputed in the same transaction.

use entity::{activities, customers};
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, QueryFilter, QuerySelect, QueryTrait, Set,
};

use super::scope::live;
use super::validate;
use super::{Activity, ActivityPatch, NewActivity};
use crate::domain::aggregate::{all_fields, append, open_write, write_next};
use crate::domain::ids::{ActivityId, CustomerId};
use crate::domain::{
    Error, Result, Tenant, ViolationCode, WriteTxn, is_unique_violation, now, users,
};
use crate::events::Op;

use activities::Column as C;

pub async fn log(t: &Tenant, input: NewActivity) -> Result<Activity> {
    let input = validate::new_activity(input)?;
    let txn = t.store().write().await?;
    lock_live_customer(&txn, t, &input.customer_id).await?;
    let author = users::ensure(t, &txn).await?;
    let activity = insert(&txn, t, input, Some(author)).await?;
    t.store().commit(txn).await?;
    Ok(activity)
}

/// An activity logged inside a write the caller holds, by `author` (none: it came from
/// outside, as a social message does).
pub(crate) async fn log_in(
    txn: &WriteTxn,
    t: &Tenant,
    input: NewActivity,
    author: Option<String>,
) -> Result<Activity> {
    let input = validate::new_activity(input)?;
    lock_live_customer(txn, t, &input.customer_id).await?;
    insert(txn, t, input, author).await
}

async fn lock_live_customer(txn: &WriteTxn, t: &Tenant, customer_id: &str) -> Result<()> {
    let customer_exists = t
        .find::<customers::Entity>()
        .filter(customers::Column::Id.eq(customer_id))
        .filter(customers::Column::DeletedAt.is_null())
        // Locked before the insert (whose foreign key check share-locks it): concurrent
        // writers queue here rather than deadlock upgrading that lock in the refresh below.
        .lock_exclusive()
        .one(&**txn)
        .await?
        .is_some();
    if customer_exists {
        Ok(())
    } else {
        Err(Error::invalid(
            &["customerId"],
            ViolationCode::NotFound,
            "no such customer",
        ))
    }
}

async fn insert(
    txn: &WriteTxn,
    t: &Tenant,
    input: NewActivity,
    author: Option<String>,
) -> Result<Activity> {
    let at = now();
    let model = t
        .stamp(activities::ActiveModel {
            id: Set(ActivityId::mint().into_string()),
            customer_id: Set(input.customer_id.clone()),
            kind: Set(input.kind.as_str().to_owned()),
            subject: Set(input.subject),
            body: Set(input.body),
            occurred_at: Set(input.occurred_at.unwrap_or(at)),
            due_at: Set(input.due_at),
            completed_at: Set(input.completed_at),
            author_id: Set(author),
            source: Set(input.source),
            external_id: Set(input.external_id),
            version: Set(1),
            created_at: Set(at),
            updated_at: Set(at),
            deleted_at: Set(None),
            ..Default::default()
        })
        .insert(&**txn)
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
    let activity = Activity::try_from(model)?;
    refresh_last_activity(txn, t, &activity.customer_id).await?;
    append(
        &**txn,
        t.who(),
        &activity,
        Op::Created,
        all_fields(&activity)?,
    )
    .await?;
    Ok(activity)
}

/// `id` as the client sent it: checked after the patch, so a malformed id answers like any
/// id that names nothing.
pub async fn update(t: &Tenant, id: &str, patch: ActivityPatch) -> Result<Activity> {
    let patch = validate::patch(patch)?;
    let id = &ActivityId::from_client(id)?;
    let (txn, before) = open_write::<Activity>(t, id, patch.expected_version).await?;
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
    let moved = after.occurred_at != before.occurred_at;
    let activity: Activity = write_next(&txn, t, before, after, now(), Op::Updated, &[]).await?;
    if moved {
        refresh_last_activity(&txn, t, &activity.customer_id).await?;
    }
    t.store().commit(txn).await?;
    Ok(activity)
}

pub async fn delete(
    t: &Tenant,
    id: &ActivityId,
    expected_version: Option<i32>,
) -> Result<Activity> {
    let (txn, before) = open_write::<Activity>(t, id, expected_version).await?;
    let mut after = before.clone();
    let at = now();
    after.deleted_at = Some(at);
    // `Activity` does not expose `deletedAt`: the op alone tells of the deletion.
    let activity: Activity = write_next(&txn, t, before, after, at, Op::Deleted, &[]).await?;
    refresh_last_activity(&txn, t, &activity.customer_id).await?;
    t.store().commit(txn).await?;
    Ok(activity)
}

/// Recomputes the customer's `last_activity_at` from its live activities, so deletes and
/// back-dated edits keep it true. The customer row is locked first: two writers changing
/// activities of one customer at once then recompute one after the other, the second
/// seeing the first's committed change (on PostgreSQL each statement sees what committed
/// before it started), so the last commit does not win with a stale maximum.
async fn refresh_last_activity(
    txn: &DatabaseTransaction,
    t: &Tenant,
    customer_id: &CustomerId,
) -> Result<()> {
    t.find::<customers::Entity>()
        .filter(customers::Column::Id.eq(customer_id))
        .lock_exclusive()
        .one(txn)
        .await?;
    let latest = live(t)
        .select_only()
        .expr(Func::max(Expr::col(C::OccurredAt)))
        .filter(C::CustomerId.eq(customer_id))
        .into_query();
    t.update::<customers::Entity>()
        .col_expr(
            customers::Column::LastActivityAt,
            Expr::SubQuery(None, Box::new(latest.into())),
        )
        .filter(customers::Column::Id.eq(customer_id))
        .exec(txn)
        .await?;
    Ok(())
}
