//! Users: the people behind tokens, as owners and authors. A user row is created the first
//! time a subject writes in an organization.

use entity::users;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use super::ids::{IdKind, new_id};
use super::store::WriteTxn;
use super::{Result, Tenant, now};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub subject: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

impl From<users::Model> for User {
    fn from(m: users::Model) -> Self {
        Self {
            id: m.id,
            subject: m.subject,
            name: m.name,
            email: m.email,
        }
    }
}

/// The id of the principal's user row, creating it on first use (remembered once `txn`
/// commits).
pub async fn ensure(t: &Tenant, txn: &WriteTxn) -> Result<String> {
    let (store, who) = (t.store(), t.who());
    let key = (who.org.clone(), who.sub.clone());
    if let Ok(known) = store.known_users.read()
        && let Some(id) = known.get(&key)
    {
        return Ok(id.clone());
    }
    let row = t.stamp(users::ActiveModel {
        id: Set(new_id(IdKind::User)),
        subject: Set(who.sub.clone()),
        name: Set(None),
        email: Set(None),
        created_at: Set(now()),
        ..Default::default()
    });
    // Concurrent first writes of one subject race here; the upsert makes both see one row.
    let model = users::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([users::Column::OrgId, users::Column::Subject])
                .update_column(users::Column::Subject)
                .to_owned(),
        )
        .exec_with_returning(&**txn)
        .await?;
    txn.new_users
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push((key, model.id.clone()));
    Ok(model.id)
}

/// The tenant's users among `ids`.
pub async fn by_ids(t: &Tenant, ids: &[String]) -> Result<Vec<User>> {
    let rows = t
        .find::<users::Entity>()
        .filter(users::Column::Id.is_in(ids.iter().cloned()))
        .all(t.db())
        .await?;
    Ok(rows.into_iter().map(User::from).collect())
}

/// Whether `id` names a user of the tenant (for owner references in input).
pub async fn exists(conn: &impl ConnectionTrait, t: &Tenant, id: &str) -> Result<bool> {
    let found = t
        .find::<users::Entity>()
        .filter(users::Column::Id.eq(id))
        .one(conn)
        .await?;
    Ok(found.is_some())
}
