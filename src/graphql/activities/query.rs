use async_graphql::{Context, ID, Object, Result};

use super::inputs::{ActivityFilterInput, ActivityOrderInput, query_of};
use super::types::{ActivityConnection, ActivityNode, ActivityTotal};
use crate::auth::Scope;
use crate::domain::activities;
use crate::domain::ids::ActivityId;
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::render::Rendered;

#[derive(Default)]
pub struct ActivityQuery;

#[Object]
impl ActivityQuery {
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT)
    )]
    async fn activity(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ActivityNode>> {
        let t = tenant(ctx)?;
        let Some(id) = ActivityId::parse(&id) else {
            return Ok(None);
        };
        Ok(activities::get(t, &id).await?.map(ActivityNode))
    }

    /// Activities across customers, newest first unless `orderBy` says otherwise.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(crate::graphql::limits::DEFAULT_PAGE), Some(crate::graphql::limits::page_slicing()), Some(crate::graphql::limits::page_items()))
    )]
    #[allow(clippy::too_many_arguments)]
    async fn activities(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ActivityFilterInput>,
        order_by: Option<ActivityOrderInput>,
    ) -> Result<Option<Rendered<ActivityConnection>>> {
        let query = query_of(ctx, first, after, last, before, filter, order_by);
        let slice = activities::list(tenant(ctx)?, &query).await?;
        Ok(Some(match super::plain::render(ctx, slice) {
            Ok(value) => Rendered::plain(value),
            Err(slice) => Rendered::Typed(ActivityConnection::new(
                slice,
                ActivityTotal::Matching(Box::new(query.filter)),
            )),
        }))
    }
}
