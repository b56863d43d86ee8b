//! A tenant's data, read out whole for `crm export`: customers and activities (the trash
//! included), in id order, a page at a time, so any size streams in bounded memory.

use entity::{activities, customers};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::Value;

use super::activities::Activity;
use super::customers::Customer;
use super::{Result, Tenant};

/// Rows read per statement.
pub const PAGE: u64 = 1_000;

/// The next page of customers after `after` (an id), as the API names their fields.
pub async fn customers_after(t: &Tenant, after: &str) -> Result<Vec<Value>> {
    let rows = t
        .find::<customers::Entity>()
        .filter(customers::Column::Id.gt(after))
        .order_by_asc(customers::Column::Id)
        .limit(PAGE)
        .all(t.db())
        .await?;
    rows.into_iter()
        .map(|row| {
            let customer = Customer::try_from(row)?;
            Ok(shown(serde_json::to_value(customer)?))
        })
        .collect()
}

/// The next page of activities after `after` (an id).
pub async fn activities_after(t: &Tenant, after: &str) -> Result<Vec<Value>> {
    let rows = t
        .find::<activities::Entity>()
        .filter(activities::Column::Id.gt(after))
        .order_by_asc(activities::Column::Id)
        .limit(PAGE)
        .all(t.db())
        .await?;
    rows.into_iter()
        .map(|row| {
            let activity = Activity::try_from(row)?;
            Ok(shown(serde_json::to_value(activity)?))
        })
        .collect()
}

/// Without the tenant's own id (the reader knows it; an import elsewhere must not keep it).
fn shown(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.remove("orgId");
    }
    value
}
