use async_graphql::{Context, Object, Result, SimpleObject};

use super::inputs::{
    CreateCustomerInput, DeleteCustomerInput, RestoreCustomerInput, UpdateCustomerInput,
};
use super::types::CustomerNode;
use crate::auth::Scope;
use crate::domain::customers;
use crate::domain::ids::CustomerId;
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::user_errors::{UserError, split};

#[derive(Default)]
pub struct CustomerMutation;

#[derive(SimpleObject)]
pub struct CreateCustomerPayload {
    /// The record as the write left it; reading it needs the read scope too (a write scope
    /// alone must not read what it did not write, as an empty update would).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    pub customer: Option<CustomerNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct UpdateCustomerPayload {
    /// The record as the write left it; reading it needs the read scope too (a write scope
    /// alone must not read what it did not write, as an empty update would).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    pub customer: Option<CustomerNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteCustomerPayload {
    /// The customer as it is in the trash; reading it needs the read scope too.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    pub customer: Option<CustomerNode>,
    pub deleted_customer_id: Option<async_graphql::ID>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct RestoreCustomerPayload {
    /// The record as the write left it; reading it needs the read scope too (a write scope
    /// alone must not read what it did not write, as an empty update would).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    pub customer: Option<CustomerNode>,
    pub user_errors: Vec<UserError>,
}

#[Object]
impl CustomerMutation {
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn create_customer(
        &self,
        ctx: &Context<'_>,
        input: CreateCustomerInput,
    ) -> Result<Option<CreateCustomerPayload>> {
        let (customer, user_errors) = split(customers::create(tenant(ctx)?, input.into()).await)?;
        Ok(Some(CreateCustomerPayload {
            customer: customer.map(CustomerNode),
            user_errors,
        }))
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn update_customer(
        &self,
        ctx: &Context<'_>,
        input: UpdateCustomerInput,
    ) -> Result<Option<UpdateCustomerPayload>> {
        let (id, patch) = input.into_parts();
        let (customer, user_errors) = split(customers::update(tenant(ctx)?, &id, patch).await)?;
        Ok(Some(UpdateCustomerPayload {
            customer: customer.map(CustomerNode),
            user_errors,
        }))
    }

    /// Moves the customer to the trash; `restoreCustomer` brings it back.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn delete_customer(
        &self,
        ctx: &Context<'_>,
        input: DeleteCustomerInput,
    ) -> Result<Option<DeleteCustomerPayload>> {
        let t = tenant(ctx)?;
        let id = CustomerId::from_client(&input.id);
        let result = async { customers::delete(t, &id?, input.expected_version).await };
        let (customer, user_errors) = split(result.await)?;
        Ok(Some(DeleteCustomerPayload {
            deleted_customer_id: customer.as_ref().map(|c| c.id.to_string().into()),
            customer: customer.map(CustomerNode),
            user_errors,
        }))
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn restore_customer(
        &self,
        ctx: &Context<'_>,
        input: RestoreCustomerInput,
    ) -> Result<Option<RestoreCustomerPayload>> {
        let t = tenant(ctx)?;
        let result = async { customers::restore(t, &CustomerId::from_client(&input.id)?).await };
        let (customer, user_errors) = split(result.await)?;
        Ok(Some(RestoreCustomerPayload {
            customer: customer.map(CustomerNode),
            user_errors,
        }))
    }
}
