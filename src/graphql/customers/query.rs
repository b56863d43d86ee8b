use async_graphql::{Context, ID, Object, Result};

use super::inputs::{CustomerFilterInput, CustomerOrderInput};
use super::types::{CustomerConnection, CustomerNode, CustomerTotal};
use crate::auth::Scope;
use crate::domain::customers::{self, CustomerQuery as Query};
use crate::domain::ids::CustomerId;
use crate::domain::page::PageArgs;
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, may_read, requires_scopes};
use crate::graphql::render::Rendered;

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// A live customer by id; null when there is none (in the caller's organization).
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT)
    )]
    async fn customer(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Rendered<CustomerNode>>> {
        let t = tenant(ctx)?;
        let Some(id) = CustomerId::parse(&id) else {
            return Ok(None);
        };
        let projection = super::types::node_projection(ctx);
        let Some(customer) = customers::get(t, &id, projection).await? else {
            return Ok(None);
        };
        Ok(Some(
            match super::plain::render_one(ctx, t, customer).await {
                Ok(value) => Rendered::plain(value),
                Err(customer) => Rendered::Typed(CustomerNode(customer)),
            },
        ))
    }

    /// Customers, oldest first unless `orderBy` says otherwise. Keyset-paginated: at most
    /// 100 a page.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(crate::graphql::limits::DEFAULT_PAGE), Some(crate::graphql::limits::page_slicing()), Some(crate::graphql::limits::page_items()))
    )]
    #[allow(clippy::too_many_arguments)]
    async fn customers(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<CustomerFilterInput>,
        order_by: Option<CustomerOrderInput>,
    ) -> Result<Option<Rendered<CustomerConnection>>> {
        let mut filter: customers::CustomerFilter = filter.map(Into::into).unwrap_or_default();
        filter.search_private =
            may_read(ctx, "Customer", "email") && may_read(ctx, "Customer", "phone");
        let query = Query {
            filter,
            order: order_by.map(Into::into).unwrap_or_default(),
            page: PageArgs {
                first,
                after,
                last,
                before,
                reads: crate::graphql::connection::page_reads(ctx),
            },
            projection: super::types::projection(ctx),
        };
        let t = tenant(ctx)?;
        let plan = super::plain::Plan::of(ctx);
        if let Some(plan) = &plan
            && let Some(value) = plan.render_whole(t, &query).await?
        {
            return Ok(Some(Rendered::plain(value)));
        }
        let mut slice = customers::list(t, &query).await?;
        if let Some(plan) = plan {
            match plan.render(t, slice).await {
                Ok(value) => return Ok(Some(Rendered::plain(value))),
                Err(back) => slice = back,
            }
        }
        Ok(Some(Rendered::Typed(CustomerConnection::new(
            slice,
            CustomerTotal(query.filter),
        ))))
    }
}
