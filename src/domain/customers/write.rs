//! Customer writes. Each is one transaction that also appends its event, and each update
//! is conditional on the version it read, so concurrent writers cannot overwrite each other
//! silently.

use entity::{customer_external_ids, customers, social_profiles};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set,
};

use super::read::{external_ids_in, social_profiles_in};
use super::scope::scoped;
use super::validate::{self, ValidCustomer};
use super::{Customer, CustomerPatch, NewExternalId, NewSocialProfile};
use crate::domain::aggregate::{all_fields, append, open_write, write_next};
use crate::domain::ids::{CustomerId, IdKind, new_id};
use crate::domain::{
    Error, FieldViolation, Result, Tenant, ViolationCode, WriteTxn, is_unique_violation, now, users,
};
use crate::events::Op;

use customers::Column as C;

pub async fn create(t: &Tenant, input: super::NewCustomer) -> Result<Customer> {
    let valid: ValidCustomer = validate::new_customer(input)?;
    let txn = t.store().write().await?;
    let actor = users::ensure(t, &txn).await?;
    let customer = insert(&txn, t, valid, Some(actor)).await?;
    t.store().commit(txn).await?;
    Ok(customer)
}

/// A customer created inside a write the caller holds (with its links and its event); one
/// without an owner gets `default_owner`.
pub(crate) async fn create_in(
    txn: &WriteTxn,
    t: &Tenant,
    input: super::NewCustomer,
    default_owner: Option<String>,
) -> Result<Customer> {
    let valid = validate::new_customer(input)?;
    insert(txn, t, valid, default_owner).await
}

async fn insert(
    txn: &WriteTxn,
    t: &Tenant,
    valid: ValidCustomer,
    default_owner: Option<String>,
) -> Result<Customer> {
    let owner = match valid.owner_id {
        Some(id) => Some(checked_owner(&**txn, t, id).await?),
        None => default_owner,
    };
    let at = now();
    let model = t
        .stamp(customers::ActiveModel {
            id: Set(CustomerId::mint().into_string()),
            name: Set(valid.name),
            email: Set(valid.email),
            phone: Set(valid.phone),
            company: Set(valid.company),
            lifecycle_stage: Set(valid.lifecycle_stage.as_str().to_owned()),
            owner_id: Set(owner),
            tags: Set(serde_json::to_string(&valid.tags)?),
            custom_fields: Set(valid.custom_fields),
            version: Set(1),
            last_activity_at: Set(None),
            created_at: Set(at),
            updated_at: Set(at),
            deleted_at: Set(None),
            ..Default::default()
        })
        .insert(&**txn)
        .await?;
    insert_external_ids(txn, t, &model.id, &valid.external_ids).await?;
    insert_social_profiles(txn, t, &model.id, &valid.social_profiles).await?;
    let customer = Customer::try_from(model)?;
    // The list fields kept in tables of their own are not in the snapshot.
    let mut fields = all_fields(&customer)?;
    for (given, name) in [
        (!valid.external_ids.is_empty(), "externalIds"),
        (!valid.social_profiles.is_empty(), "socialProfiles"),
    ] {
        if given {
            fields.push(name.to_owned());
        }
    }
    fields.sort();
    append(&**txn, t.who(), &customer, Op::Created, fields).await?;
    Ok(customer)
}

/// The fields of a validated patch that are the row's own columns, applied to the row; the
/// owner (checked against the users) and the linked lists are the caller's to apply.
pub(super) fn apply_own_fields(
    patch: &mut CustomerPatch,
    after: &mut customers::Model,
) -> Result<()> {
    if let Some(name) = patch.name.take() {
        after.name = name;
    }
    if let Some(email) = patch.email.take() {
        after.email = email;
    }
    if let Some(phone) = patch.phone.take() {
        after.phone = phone;
    }
    if let Some(company) = patch.company.take() {
        after.company = company;
    }
    if let Some(stage) = patch.lifecycle_stage.take() {
        after.lifecycle_stage = stage.as_str().to_owned();
    }
    if let Some(tags) = patch.tags.take() {
        after.tags = serde_json::to_string(&tags)?;
    }
    if let Some(fields) = patch.custom_fields.take() {
        after.custom_fields = fields;
    }
    Ok(())
}

/// `id` as the client sent it: checked after the patch, so a malformed id answers like any
/// id that names nothing.
pub async fn update(t: &Tenant, id: &str, patch: CustomerPatch) -> Result<Customer> {
    let patch = validate::patch(patch)?;
    let id = &CustomerId::from_client(id)?;
    let (txn, before) = open_write::<Customer>(t, id, patch.expected_version).await?;
    let mut patch = patch;
    let mut after = before.clone();
    apply_own_fields(&mut patch, &mut after)?;
    if let Some(owner) = patch.owner_id {
        after.owner_id = match owner {
            Some(owner) => Some(checked_owner(&*txn, t, owner).await?),
            None => None,
        };
    }
    // Lists in tables of their own are replaced only when they differ (in order, as shown).
    let mut also_changed = Vec::new();
    if let Some(ids) = patch.external_ids
        && ids != current_external_ids(&txn, t, id).await?
    {
        t.delete::<customer_external_ids::Entity>()
            .filter(customer_external_ids::Column::CustomerId.eq(id))
            .exec(&*txn)
            .await?;
        insert_external_ids(&txn, t, id.as_str(), &ids).await?;
        also_changed.push("externalIds");
    }
    if let Some(profiles) = patch.social_profiles
        && profiles != current_social_profiles(&txn, t, id).await?
    {
        t.delete::<social_profiles::Entity>()
            .filter(social_profiles::Column::CustomerId.eq(id))
            .exec(&*txn)
            .await?;
        insert_social_profiles(&txn, t, id.as_str(), &profiles).await?;
        also_changed.push("socialProfiles");
    }
    let customer = write_next(&txn, t, before, after, now(), Op::Updated, &also_changed).await?;
    t.store().commit(txn).await?;
    Ok(customer)
}

pub async fn delete(
    t: &Tenant,
    id: &CustomerId,
    expected_version: Option<i32>,
) -> Result<Customer> {
    let (txn, before) = open_write::<Customer>(t, id, expected_version).await?;
    let mut after = before.clone();
    let at = now();
    after.deleted_at = Some(at);
    let customer = write_next(&txn, t, before, after, at, Op::Deleted, &[]).await?;
    t.store().commit(txn).await?;
    Ok(customer)
}

/// Brings a soft-deleted customer back; restoring a live one changes nothing.
pub async fn restore(t: &Tenant, id: &CustomerId) -> Result<Customer> {
    let txn = t.store().write().await?;
    let before = scoped(t)
        .filter(C::Id.eq(id))
        .lock_exclusive()
        .one(&*txn)
        .await?
        .ok_or(Error::NotFound)?;
    if before.deleted_at.is_none() {
        t.store().commit(txn).await?;
        return Customer::try_from(before);
    }
    let mut after = before.clone();
    after.deleted_at = None;
    let customer = write_next(&txn, t, before, after, now(), Op::Restored, &[]).await?;
    t.store().commit(txn).await?;
    Ok(customer)
}

async fn current_external_ids(
    txn: &DatabaseTransaction,
    t: &Tenant,
    id: &CustomerId,
) -> Result<Vec<NewExternalId>> {
    let ids = external_ids_in(txn, t, std::slice::from_ref(id)).await?;
    Ok(ids
        .into_iter()
        .map(|x| NewExternalId {
            source: x.source,
            external_id: x.external_id,
        })
        .collect())
}

async fn current_social_profiles(
    txn: &DatabaseTransaction,
    t: &Tenant,
    id: &CustomerId,
) -> Result<Vec<NewSocialProfile>> {
    let profiles = social_profiles_in(txn, t, std::slice::from_ref(id)).await?;
    Ok(profiles
        .into_iter()
        .map(|p| NewSocialProfile {
            network: p.network,
            handle: p.handle,
            network_user_id: p.network_user_id,
            url: p.url,
        })
        .collect())
}

async fn checked_owner(conn: &impl ConnectionTrait, t: &Tenant, id: String) -> Result<String> {
    if users::exists(conn, t, &id).await? {
        Ok(id)
    } else {
        Err(Error::invalid(
            &["ownerId"],
            ViolationCode::NotFound,
            "no such user",
        ))
    }
}

async fn insert_external_ids(
    txn: &DatabaseTransaction,
    t: &Tenant,
    customer_id: &str,
    ids: &[NewExternalId],
) -> Result<()> {
    for (i, x) in ids.iter().enumerate() {
        let row = t.stamp(customer_external_ids::ActiveModel {
            id: Set(new_id(IdKind::ExternalId)),
            customer_id: Set(customer_id.to_owned()),
            source: Set(x.source.clone()),
            external_id: Set(x.external_id.clone()),
            created_at: Set(now()),
            ..Default::default()
        });
        customer_external_ids::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    Error::Invalid(vec![FieldViolation::new(
                        &["externalIds", &i.to_string(), "externalId"],
                        ViolationCode::Duplicate,
                        "belongs to another customer",
                    )])
                } else {
                    err.into()
                }
            })?;
    }
    Ok(())
}

async fn insert_social_profiles(
    txn: &DatabaseTransaction,
    t: &Tenant,
    customer_id: &str,
    profiles: &[NewSocialProfile],
) -> Result<()> {
    for (i, p) in profiles.iter().enumerate() {
        let row = t.stamp(social_profiles::ActiveModel {
            id: Set(new_id(IdKind::SocialProfile)),
            customer_id: Set(customer_id.to_owned()),
            network: Set(p.network.clone()),
            handle: Set(p.handle.clone()),
            network_user_id: Set(p.network_user_id.clone()),
            url: Set(p.url.clone()),
            created_at: Set(now()),
            ..Default::default()
        });
        social_profiles::Entity::insert(row)
            .exec_without_returning(txn)
            .await
            .map_err(|err| {
                if is_unique_violation(&err) {
                    Error::Invalid(vec![FieldViolation::new(
                        &["socialProfiles", &i.to_string(), "networkUserId"],
                        ViolationCode::Duplicate,
                        "belongs to another customer",
                    )])
                } else {
                    err.into()
                }
            })?;
    }
    Ok(())
}
