use async_graphql::types::Json;
use async_graphql::{Enum, ID, InputObject, MaybeUndefined};

use super::types::LifecycleStage;
use crate::auth::Scope;
use crate::domain::customers::{
    CustomerFilter, CustomerOrder, CustomerPatch, CustomerSortField, NewCustomer, NewExternalId,
    NewSocialProfile,
};
use crate::graphql::filters::{
    DateTimeFilter, IdFilter, OrderDirection, StringFilter, enum_ops, ops,
};
use crate::graphql::permissions::{all_of, requires_scopes};

#[derive(InputObject, Clone)]
pub struct LifecycleStageFilter {
    pub eq: Option<LifecycleStage>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<LifecycleStage>>,
}

fn stage_name(stage: LifecycleStage) -> &'static str {
    crate::domain::customers::LifecycleStage::from(stage).as_str()
}

/// Which customers to list. Fields combine with AND; use `or` and `not` for the rest.
#[derive(InputObject, Clone, Default)]
#[graphql(name = "CustomerFilter")]
pub struct CustomerFilterInput {
    pub id: Option<IdFilter>,
    pub name: Option<StringFilter>,
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    pub email: Option<StringFilter>,
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    pub phone: Option<StringFilter>,
    pub company: Option<StringFilter>,
    pub lifecycle_stage: Option<LifecycleStageFilter>,
    pub owner_id: Option<IdFilter>,
    /// Customers carrying this tag.
    pub tag: Option<String>,
    pub created_at: Option<DateTimeFilter>,
    pub updated_at: Option<DateTimeFilter>,
    pub last_activity_at: Option<DateTimeFilter>,
    /// Free text, matched against name and company, ignoring case; also against email and
    /// phone for tokens that may read them (`pii:read`).
    pub search: Option<String>,
    /// `true` lists the trash (soft-deleted customers) instead of live ones.
    pub deleted: Option<bool>,
    pub and: Option<Vec<CustomerFilterInput>>,
    pub or: Option<Vec<CustomerFilterInput>>,
    pub not: Option<Box<CustomerFilterInput>>,
}

impl From<CustomerFilterInput> for CustomerFilter {
    fn from(f: CustomerFilterInput) -> Self {
        let many = |v: Option<Vec<CustomerFilterInput>>| {
            v.unwrap_or_default().into_iter().map(Into::into).collect()
        };
        Self {
            id: ops(f.id),
            name: ops(f.name),
            email: ops(f.email),
            phone: ops(f.phone),
            company: ops(f.company),
            lifecycle_stage: f.lifecycle_stage.map(|s| enum_ops(s.eq, s.in_, stage_name)),
            owner_id: ops(f.owner_id),
            tag: f.tag,
            created_at: ops(f.created_at),
            updated_at: ops(f.updated_at),
            last_activity_at: ops(f.last_activity_at),
            search: f.search,
            // Widened by the resolver for callers who may read email and phone.
            search_private: false,
            deleted: f.deleted,
            and: many(f.and),
            or: many(f.or),
            not: f.not.map(|n| Box::new((*n).into())),
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::customers::CustomerSortField")]
pub enum CustomerOrderField {
    Name,
    CreatedAt,
    UpdatedAt,
    /// Customers without activities come last in either direction.
    LastActivityAt,
}

#[derive(InputObject, Clone, Copy)]
#[graphql(name = "CustomerOrder")]
pub struct CustomerOrderInput {
    pub field: CustomerOrderField,
    #[graphql(default)]
    pub direction: OrderDirection,
}

impl From<CustomerOrderInput> for CustomerOrder {
    fn from(o: CustomerOrderInput) -> Self {
        Self {
            field: CustomerSortField::from(o.field),
            descending: o.direction.descending(),
        }
    }
}

#[derive(InputObject, Clone)]
pub struct ExternalIdInput {
    pub source: String,
    pub external_id: String,
}

impl From<ExternalIdInput> for NewExternalId {
    fn from(x: ExternalIdInput) -> Self {
        Self {
            source: x.source,
            external_id: x.external_id,
        }
    }
}

#[derive(InputObject, Clone)]
pub struct SocialProfileInput {
    pub network: String,
    pub handle: String,
    pub network_user_id: Option<String>,
    pub url: Option<String>,
}

impl From<SocialProfileInput> for NewSocialProfile {
    fn from(p: SocialProfileInput) -> Self {
        Self {
            network: p.network,
            handle: p.handle,
            network_user_id: p.network_user_id,
            url: p.url,
        }
    }
}

#[derive(InputObject)]
pub struct CreateCustomerInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// Defaults to LEAD.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// Defaults to the caller.
    pub owner_id: Option<ID>,
    #[graphql(default)]
    pub tags: Vec<String>,
    /// A JSON object of up to 16 KiB.
    pub custom_fields: Option<Json<serde_json::Value>>,
    #[graphql(default)]
    pub external_ids: Vec<ExternalIdInput>,
    #[graphql(default)]
    pub social_profiles: Vec<SocialProfileInput>,
}

impl From<CreateCustomerInput> for NewCustomer {
    fn from(i: CreateCustomerInput) -> Self {
        Self {
            name: i.name,
            email: i.email,
            phone: i.phone,
            company: i.company,
            lifecycle_stage: i.lifecycle_stage.map(Into::into),
            owner_id: i.owner_id.map(|id| id.0),
            tags: i.tags,
            custom_fields: i.custom_fields.map(|j| j.0),
            external_ids: i.external_ids.into_iter().map(Into::into).collect(),
            social_profiles: i.social_profiles.into_iter().map(Into::into).collect(),
        }
    }
}

/// Fields left out stay as they are; nullable fields set to null are cleared.
#[derive(InputObject)]
pub struct UpdateCustomerInput {
    pub id: ID,
    /// When given, the update applies only if the customer is still at this version.
    pub expected_version: Option<i32>,
    pub name: Option<String>,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub company: MaybeUndefined<String>,
    pub lifecycle_stage: Option<LifecycleStage>,
    pub owner_id: MaybeUndefined<ID>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Replaces the custom fields.
    pub custom_fields: Option<Json<serde_json::Value>>,
    /// Replaces the external ids.
    pub external_ids: Option<Vec<ExternalIdInput>>,
    /// Replaces the social profiles.
    pub social_profiles: Option<Vec<SocialProfileInput>>,
}

pub fn patch_of<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl UpdateCustomerInput {
    pub fn into_parts(self) -> (String, CustomerPatch) {
        let patch = CustomerPatch {
            expected_version: self.expected_version,
            name: self.name,
            email: patch_of(self.email),
            phone: patch_of(self.phone),
            company: patch_of(self.company),
            lifecycle_stage: self.lifecycle_stage.map(Into::into),
            owner_id: patch_of(self.owner_id).map(|o| o.map(|id| id.0)),
            tags: self.tags,
            custom_fields: self.custom_fields.map(|j| j.0),
            external_ids: self
                .external_ids
                .map(|v| v.into_iter().map(Into::into).collect()),
            social_profiles: self
                .social_profiles
                .map(|v| v.into_iter().map(Into::into).collect()),
        };
        (self.id.0, patch)
    }
}

#[derive(InputObject)]
pub struct DeleteCustomerInput {
    pub id: ID,
    pub expected_version: Option<i32>,
}

#[derive(InputObject)]
pub struct RestoreCustomerInput {
    pub id: ID,
}
