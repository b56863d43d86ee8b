use async_graphql::types::Json;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use crate::auth::Scope;
use crate::domain::customers::{self, Customer, CustomerFilter};
use crate::domain::projection::Projection;
use crate::graphql::activities::{
    ActivityConnection, ActivityFilterInput, ActivityOrderInput, ActivityTotal,
};
use crate::graphql::connection::connection;
use crate::graphql::context::tenant;
use crate::graphql::loaders::{Args, Loaders};
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::render::Rendered;
use crate::graphql::scalars::DateTime;
use crate::graphql::users::UserNode;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::customers::LifecycleStage")]
pub enum LifecycleStage {
    Lead,
    Prospect,
    Customer,
    Churned,
}

/// A person or company the organization does business with.
pub struct CustomerNode(pub Customer);

impl From<Customer> for CustomerNode {
    fn from(c: Customer) -> Self {
        Self(c)
    }
}

#[Object(name = "Customer")]
impl CustomerNode {
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// E.164 when the number was given with its country code.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    async fn company(&self) -> Option<&str> {
        self.0.company.as_deref()
    }

    async fn lifecycle_stage(&self) -> LifecycleStage {
        self.0.lifecycle_stage.into()
    }

    async fn tags(&self) -> &[String] {
        &self.0.tags
    }

    async fn custom_fields(&self) -> Json<&serde_json::Value> {
        Json(&self.0.custom_fields)
    }

    /// Increases with every change; pass it as `expectedVersion` to update safely.
    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn last_activity_at(&self) -> Option<DateTime> {
        self.0.last_activity_at.map(Into::into)
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// Set while the customer is in the trash (soft-deleted).
    async fn deleted_at(&self) -> Option<DateTime> {
        self.0.deleted_at.map(Into::into)
    }

    #[graphql(directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT))]
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<UserNode>> {
        let Some(owner) = &self.0.owner_id else {
            return Ok(None);
        };
        let user = ctx
            .data::<Loaders>()?
            .users()
            .load_one(owner.clone())
            .await?;
        Ok(user.map(UserNode))
    }

    /// Keys of this customer in other systems.
    #[graphql(
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(10), None, None)
    )]
    async fn external_ids(&self, ctx: &Context<'_>) -> Result<Vec<ExternalIdNode>> {
        let ids = ctx
            .data::<Loaders>()?
            .external_ids()
            .load_one(self.0.id.clone())
            .await?;
        Ok(ids
            .unwrap_or_default()
            .into_iter()
            .map(|x| ExternalIdNode {
                source: x.source,
                external_id: x.external_id,
            })
            .collect())
    }

    #[graphql(
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(10), None, None)
    )]
    async fn social_profiles(&self, ctx: &Context<'_>) -> Result<Vec<SocialProfileNode>> {
        let profiles = ctx
            .data::<Loaders>()?
            .social_profiles()
            .load_one(self.0.id.clone())
            .await?;
        Ok(profiles
            .unwrap_or_default()
            .into_iter()
            .map(|p| SocialProfileNode {
                network: p.network,
                handle: p.handle,
                network_user_id: p.network_user_id,
                url: p.url,
            })
            .collect())
    }

    /// The customer's activities, newest first by default; batched across customers.
    #[graphql(
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])),
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
        let query =
            crate::graphql::activities::query_of(ctx, first, after, last, before, filter, order_by);
        let filter = Args::new(query.filter.clone());
        let key = (self.0.id.clone(), Args::new(query));
        let page = ctx
            .data::<Loaders>()?
            .activity_pages()
            .load_one(key)
            .await?
            .unwrap_or_else(crate::domain::page::Slice::empty);
        Ok(Some(
            match crate::graphql::activities::plain::render(ctx, page) {
                Ok(value) => Rendered::plain(value),
                Err(page) => Rendered::Typed(ActivityConnection::new(
                    page,
                    ActivityTotal::OfCustomer(self.0.id.clone(), filter),
                )),
            },
        ))
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "ExternalId")]
pub struct ExternalIdNode {
    /// The system the id belongs to, lower-cased (e.g. `stripe`).
    pub source: String,
    pub external_id: String,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(name = "SocialProfile")]
pub struct SocialProfileNode {
    pub network: String,
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    pub handle: String,
    pub network_user_id: Option<String>,
    /// Usually holds the handle, so it is guarded like it.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    pub url: Option<String>,
}

/// The columns a customer connection's selection needs: a page fetches nothing else.
pub fn projection(ctx: &Context<'_>) -> Projection<entity::customers::Entity> {
    crate::graphql::connection::projection(ctx, COLUMNS, ALWAYS)
}

/// The columns the customer field `ctx` resolves (`customer(id)`) reads.
pub fn node_projection(ctx: &Context<'_>) -> Projection<entity::customers::Entity> {
    crate::graphql::connection::node_projection(&[ctx.look_ahead()], COLUMNS, ALWAYS)
}

/// The column each field of `Customer` reads.
const COLUMNS: &[(&str, entity::customers::Column)] = {
    use entity::customers::Column as C;
    &[
        ("name", C::Name),
        ("email", C::Email),
        ("phone", C::Phone),
        ("company", C::Company),
        ("lifecycleStage", C::LifecycleStage),
        ("owner", C::OwnerId),
        ("tags", C::Tags),
        ("customFields", C::CustomFields),
        ("version", C::Version),
        ("lastActivityAt", C::LastActivityAt),
        ("createdAt", C::CreatedAt),
        ("updatedAt", C::UpdatedAt),
        ("deletedAt", C::DeletedAt),
    ]
};

/// The id, which every relation (activities, external ids, profiles) reads.
const ALWAYS: &[entity::customers::Column] = &[entity::customers::Column::Id];

/// `totalCount` of a customer list: the filter it counts.
pub struct CustomerTotal(pub CustomerFilter);

impl CustomerTotal {
    pub async fn resolve(&self, ctx: &Context<'_>) -> Result<u64> {
        Ok(customers::count(tenant(ctx)?, &self.0).await?)
    }
}

connection!(
    CustomerConnection,
    CustomerEdge,
    CustomerNode,
    CustomerTotal
);
