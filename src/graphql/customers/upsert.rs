//! `upsertCustomers`: many customers created or updated by their id in another system, in
//! one transaction, with a result per item.

use async_graphql::types::Json;
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};

use super::inputs::patch_of;
use super::types::{CustomerNode, LifecycleStage};
use crate::auth::Scope;
use crate::domain::customers::{self, Upsert, UpsertItem, UpsertResult};
use crate::graphql::context::tenant;
use crate::graphql::limits::costs::{cost, list_size};
use crate::graphql::limits::{ROW_WRITE, WRITE};
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::user_errors::{UserError, split};

#[derive(Default)]
pub struct CustomerUpsertMutation;

/// Customers to create or update, matched by their id in `source`.
#[derive(InputObject)]
pub struct UpsertCustomersInput {
    /// The system the external ids belong to (`erp`, `stripe`…); compared without case.
    pub source: String,
    /// At most 1,000. Each item is charged (`@cost`) on top of the mutation's own cost.
    #[graphql(directive = cost::apply(ROW_WRITE))]
    pub items: Vec<CustomerUpsertInput>,
}

/// One customer, keyed by `externalId`: created with the defaults of `createCustomer` when
/// no customer holds the key in the source, else updated. In an update, a field left out
/// stays as it is and a nullable field set to `null` is cleared.
#[derive(InputObject)]
pub struct CustomerUpsertInput {
    /// The customer's id in `source`; unique in the call.
    pub external_id: String,
    pub name: String,
    pub email: MaybeUndefined<String>,
    pub phone: MaybeUndefined<String>,
    pub company: MaybeUndefined<String>,
    /// LEAD for a new customer when left out.
    pub lifecycle_stage: Option<LifecycleStage>,
    /// The caller for a new customer when left out; `null` for none.
    pub owner_id: MaybeUndefined<ID>,
    /// Replaces the tags.
    pub tags: Option<Vec<String>>,
    /// Replaces the custom fields: a JSON object of up to 16 KiB.
    pub custom_fields: Option<Json<serde_json::Value>>,
}

impl From<CustomerUpsertInput> for UpsertItem {
    fn from(i: CustomerUpsertInput) -> Self {
        Self {
            external_id: Some(i.external_id),
            name: i.name,
            email: patch_of(i.email),
            phone: patch_of(i.phone),
            company: patch_of(i.company),
            lifecycle_stage: i.lifecycle_stage.map(Into::into),
            owner_id: patch_of(i.owner_id).map(|owner| owner.map(|id| id.0)),
            tags: i.tags,
            custom_fields: i.custom_fields.map(|j| j.0),
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::customers::UpsertStatus")]
pub enum UpsertStatus {
    /// A new customer, holding the external id.
    Created,
    /// The matched customer changed (a new version and an `UPDATED` event).
    Updated,
    /// The matched customer was already as given: nothing written.
    Unchanged,
    /// Refused (see `userErrors`) and skipped; the other items were still written.
    Invalid,
}

/// What became of one item.
#[derive(SimpleObject)]
pub struct CustomerUpsertResult {
    /// The item's `externalId`, as sent.
    pub external_id: String,
    pub status: UpsertStatus,
    /// The customer as the call left it (null for an invalid item); reading it needs the
    /// read scope too.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    pub customer: Option<CustomerNode>,
    /// Why the item is invalid; paths start below `input` (`["items", "3", "email"]`).
    pub user_errors: Vec<UserError>,
}

impl From<UpsertResult> for CustomerUpsertResult {
    fn from(r: UpsertResult) -> Self {
        Self {
            // The API's items always have one.
            external_id: r.external_id.unwrap_or_default(),
            status: r.status.into(),
            customer: r.customer.map(CustomerNode),
            user_errors: r.violations.into_iter().map(UserError::from).collect(),
        }
    }
}

#[derive(SimpleObject)]
pub struct UpsertCustomersPayload {
    /// One per item, in the order of the items.
    pub results: Vec<CustomerUpsertResult>,
    /// What is wrong with the call as a whole (a bad `source`): then nothing is written.
    pub user_errors: Vec<UserError>,
}

#[Object]
impl CustomerUpsertMutation {
    /// Creates or updates up to 1,000 customers by their id in another system, in one
    /// transaction: each item is matched by (`source`, `externalId`) among the organization's
    /// external ids. An invalid item is reported (`INVALID`, with its `userErrors`) and
    /// skipped while the others are written; more than 1,000 items is a `BAD_USER_INPUT`
    /// error and writes nothing. Events are appended only for what changed.
    ///
    /// Cost: the mutation's `@cost` of 500 (one transaction, the batched look-ups), plus
    /// the `@cost` of `items` for each item given (each is its own insert or update and
    /// event), plus what `results` selects, once per item (`@listSize` sizes `results` by
    /// the number of items, as a connection's page size sizes its `nodes`). 1,000 items
    /// selecting `results { externalId status customer { id } }` cost 500 + 20 × 1,000 +
    /// 5 × 1,000 + 1 = 25,501.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersWrite])),
        directive = cost::apply(WRITE),
        directive = list_size::apply(
            Some(i32::try_from(customers::MAX_UPSERT_ITEMS).unwrap_or(i32::MAX)),
            Some(vec!["input.items".to_owned()]),
            Some(vec!["results".to_owned()])
        )
    )]
    async fn upsert_customers(
        &self,
        ctx: &Context<'_>,
        input: UpsertCustomersInput,
    ) -> Result<Option<UpsertCustomersPayload>> {
        let upsert = Upsert {
            source: input.source,
            items: input.items.into_iter().map(Into::into).collect(),
        };
        let (results, user_errors) = split(customers::upsert(tenant(ctx)?, upsert).await)?;
        Ok(Some(UpsertCustomersPayload {
            results: results
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            user_errors,
        }))
    }
}
