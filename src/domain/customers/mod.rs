//! Customers: the records everything else hangs off. Types here; rules in `validate`,
//! reads in `read`, writes in `write`, the tenant boundary in `scope`.

mod read;
mod scope;
mod upsert;
mod validate;
mod write;

use chrono::{DateTime, Utc};
use entity::customers;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::aggregate::aggregate;
use super::filter::{EqOps, TextOps, TimeOps};
use super::ids::CustomerId;
use super::page::{CursorValue, PageArgs, SortSpec, SortValueKind, Sortable};
use super::projection::{Projected, Projection};
use super::{Error, Result};
use crate::events::EntityKind;

pub use read::{
    by_ids, count, external_ids_of, get, list, list_with_activities, social_profiles_of,
};
pub use upsert::{
    CheckedUpsert, MAX_UPSERT_ITEMS, Upsert, UpsertItem, UpsertResult, UpsertStatus,
    refresh_statistics, refresh_statistics_now, upsert, upsert_in,
};
pub(crate) use write::create_in;
pub use write::{create, delete, restore, update};

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
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum LifecycleStage {
    Lead,
    Prospect,
    Customer,
    Churned,
}

impl LifecycleStage {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    fn parse(s: &str) -> Result<Self> {
        s.parse().map_err(|_| {
            Error::Internal(format!("unknown lifecycle stage {s:?} in the database").into())
        })
    }
}

/// A customer as the rest of the service sees it; also the event snapshot (camelCase; its
/// keys become `changedFields` through [`Customer::field_name`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    pub id: CustomerId,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub lifecycle_stage: LifecycleStage,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Value,
    pub version: i32,
    pub last_activity_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Customer {
    /// The field of the GraphQL `Customer` type that shows a snapshot key, or `None` for a key
    /// it does not expose: the one mapping from snapshot keys to `changedFields` names.
    pub fn field_name(key: &str) -> Option<&str> {
        match key {
            "orgId" => None,
            "ownerId" => Some("owner"),
            other => Some(other),
        }
    }
}

impl crate::events::Snapshot for Customer {
    const VERSION: u64 = 1;
}

aggregate!(Customer, CustomerId, customers, EntityKind::Customer);

impl Customer {
    /// The stored row of a customer, the inverse of `TryFrom<Model>`; its tenant stamps it.
    pub(crate) fn into_row(self) -> Result<customers::ActiveModel> {
        use sea_orm::Set;
        Ok(customers::ActiveModel {
            tags: Set(serde_json::to_string(&self.tags)?),
            id: Set(self.id.into_string()),
            name: Set(self.name),
            email: Set(self.email),
            phone: Set(self.phone),
            company: Set(self.company),
            lifecycle_stage: Set(self.lifecycle_stage.as_str().to_owned()),
            owner_id: Set(self.owner_id),
            custom_fields: Set(self.custom_fields),
            version: Set(self.version),
            last_activity_at: Set(self.last_activity_at),
            created_at: Set(self.created_at),
            updated_at: Set(self.updated_at),
            deleted_at: Set(self.deleted_at),
            ..Default::default()
        })
    }
}

impl Projected for customers::Entity {
    type Record = Customer;

    fn decode_after(
        p: Projection<Self>,
        row: &sea_orm::QueryResult,
        first: usize,
    ) -> Result<Customer> {
        use customers::Column as C;
        let mut r = p.reader_from(row, first);
        Ok(Customer {
            id: CustomerId::stored(r.get(C::Id, String::new())?),
            org_id: r.get(C::OrgId, String::new())?,
            name: r.get(C::Name, String::new())?,
            email: r.get(C::Email, None)?,
            phone: r.get(C::Phone, None)?,
            company: r.get(C::Company, None)?,
            // Any stage: not shown.
            lifecycle_stage: r.map(C::LifecycleStage, LifecycleStage::Lead, |s: String| {
                LifecycleStage::parse(&s)
            })?,
            owner_id: r.get(C::OwnerId, None)?,
            tags: r.map(C::Tags, Vec::new(), |s: String| {
                Ok(serde_json::from_str(&s)?)
            })?,
            custom_fields: r.get(C::CustomFields, Value::Null)?,
            version: r.get(C::Version, 0)?,
            last_activity_at: r.get(C::LastActivityAt, None)?,
            created_at: r.get(C::CreatedAt, DateTime::default())?,
            updated_at: r.get(C::UpdatedAt, DateTime::default())?,
            deleted_at: r.get(C::DeletedAt, None)?,
        })
    }
}

impl Sortable for Customer {
    type Column = customers::Column;

    fn sort_value(&self, column: customers::Column) -> CursorValue {
        use customers::Column as C;
        match column {
            C::Name => CursorValue::Text(self.name.clone()),
            C::CreatedAt => CursorValue::at(Some(self.created_at)),
            C::UpdatedAt => CursorValue::at(Some(self.updated_at)),
            C::LastActivityAt => CursorValue::at(self.last_activity_at),
            _ => CursorValue::Null,
        }
    }

    fn sort_id(&self) -> &str {
        self.id.as_str()
    }
}

impl TryFrom<customers::Model> for Customer {
    type Error = Error;

    fn try_from(m: customers::Model) -> Result<Self> {
        Ok(Self {
            lifecycle_stage: LifecycleStage::parse(&m.lifecycle_stage)?,
            tags: serde_json::from_str(&m.tags)?,
            id: CustomerId::stored(m.id),
            org_id: m.org_id,
            name: m.name,
            email: m.email,
            phone: m.phone,
            company: m.company,
            owner_id: m.owner_id,
            custom_fields: m.custom_fields,
            version: m.version,
            last_activity_at: m.last_activity_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
            deleted_at: m.deleted_at,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalId {
    pub id: String,
    pub customer_id: String,
    pub source: String,
    pub external_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocialProfile {
    pub id: String,
    pub customer_id: String,
    pub network: String,
    pub handle: String,
    pub network_user_id: Option<String>,
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NewExternalId {
    pub source: String,
    pub external_id: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct NewSocialProfile {
    pub network: String,
    pub handle: String,
    pub network_user_id: Option<String>,
    pub url: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct NewCustomer {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Defaults to the acting user.
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: Option<Value>,
    pub external_ids: Vec<NewExternalId>,
    pub social_profiles: Vec<NewSocialProfile>,
}

/// A partial update: `None` keeps a field; for nullable fields `Some(None)` clears it.
#[derive(Clone, Debug, Default)]
pub struct CustomerPatch {
    pub expected_version: Option<i32>,
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub company: Option<Option<String>>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    pub custom_fields: Option<Value>,
    /// Replaces the customer's external ids when given.
    pub external_ids: Option<Vec<NewExternalId>>,
    /// Replaces the customer's social profiles when given.
    pub social_profiles: Option<Vec<NewSocialProfile>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CustomerFilter {
    pub id: Option<EqOps>,
    pub name: Option<TextOps>,
    pub email: Option<TextOps>,
    pub phone: Option<TextOps>,
    pub company: Option<TextOps>,
    pub lifecycle_stage: Option<EqOps>,
    pub owner_id: Option<EqOps>,
    /// Customers carrying this tag.
    pub tag: Option<String>,
    pub created_at: Option<TimeOps>,
    pub updated_at: Option<TimeOps>,
    pub last_activity_at: Option<TimeOps>,
    /// Free text over name and company, and over email and phone when `search_private`.
    pub search: Option<String>,
    /// Whether `search` (at any level of the filter) matches email and phone: set only for
    /// callers who may read them, or search would reveal them.
    pub search_private: bool,
    /// Soft-deleted customers instead of live ones.
    pub deleted: Option<bool>,
    pub and: Vec<CustomerFilter>,
    pub or: Vec<CustomerFilter>,
    pub not: Option<Box<CustomerFilter>>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CustomerSortField {
    Name,
    #[default]
    CreatedAt,
    UpdatedAt,
    LastActivityAt,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct CustomerOrder {
    pub field: CustomerSortField,
    pub descending: bool,
}

impl CustomerOrder {
    pub fn spec(self) -> SortSpec<customers::Column> {
        use customers::Column as C;
        let (name, column, kind, nullable) = match self.field {
            CustomerSortField::Name => ("name", C::Name, SortValueKind::Text, false),
            CustomerSortField::CreatedAt => ("createdAt", C::CreatedAt, SortValueKind::Time, false),
            CustomerSortField::UpdatedAt => ("updatedAt", C::UpdatedAt, SortValueKind::Time, false),
            CustomerSortField::LastActivityAt => (
                "lastActivityAt",
                C::LastActivityAt,
                SortValueKind::Time,
                true,
            ),
        };
        SortSpec {
            name,
            column,
            id: C::Id,
            kind,
            nullable,
            descending: self.descending,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct CustomerQuery {
    pub filter: CustomerFilter,
    pub order: CustomerOrder,
    pub page: PageArgs,
    /// The columns the read fetches.
    pub projection: Projection<customers::Entity>,
}
