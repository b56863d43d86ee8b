//! Relay object identification: `node(id:)` and `nodes(ids:)`, routed by the id's prefix
//! and resolved through the same loaders (and scope checks) as every other read.

use async_graphql::{Context, ID, Interface, Object, PathSegment, Result};

use super::activities::ActivityNode;
use super::clients::ApiClientNode;
use super::context::principal;
use super::customers::CustomerNode;
use super::errors::ApiError;
use super::loaders::Loaders;
use super::permissions::path_segments;
use super::users::UserNode;
use crate::auth::Scope;
use crate::domain::ids::{ActivityId, CustomerId, IdKind};

#[derive(Interface)]
#[graphql(field(name = "id", ty = "ID"))]
pub enum Node {
    Customer(CustomerNode),
    Activity(ActivityNode),
    User(UserNode),
    ApiClient(ApiClientNode),
}

#[derive(Default)]
pub struct NodeQuery;

async fn load(ctx: &Context<'_>, id: &str) -> Result<Option<Node>> {
    let who = principal(ctx)?;
    let loaders = ctx.data::<Loaders>()?;
    let need = |scope: Scope| -> Result<()> {
        if who.has(scope) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(scope).into())
        }
    };
    Ok(match IdKind::of(id) {
        Some(IdKind::Customer) => {
            need(Scope::CustomersRead)?;
            let Some(id) = CustomerId::parse(id) else {
                return Ok(None);
            };
            loaders
                .customers()
                .load_one(id)
                .await?
                .map(|c| Node::Customer(CustomerNode(c)))
        }
        Some(IdKind::Activity) => {
            need(Scope::ActivitiesRead)?;
            let Some(id) = ActivityId::parse(id) else {
                return Ok(None);
            };
            loaders
                .activities()
                .load_one(id)
                .await?
                .map(|a| Node::Activity(ActivityNode(a)))
        }
        Some(IdKind::User) => loaders
            .users()
            .load_one(id.to_owned())
            .await?
            .map(|u| Node::User(UserNode(u))),
        Some(IdKind::ApiClient) => {
            need(Scope::ClientsManage)?;
            crate::domain::clients::get(super::context::tenant(ctx)?, id)
                .await?
                .map(|c| Node::ApiClient(ApiClientNode(c)))
        }
        Some(
            IdKind::ExternalId
            | IdKind::SocialProfile
            | IdKind::SocialConnection
            | IdKind::InboundMessage
            | IdKind::WebhookEndpoint
            | IdKind::WebhookMessage,
        )
        | None => None,
    })
}

#[Object]
impl NodeQuery {
    /// Any object by its id; null when there is none (in the caller's organization).
    #[graphql(directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT))]
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Node>> {
        load(ctx, &id).await
    }

    /// Objects by id, in the order asked; null where there is none. At most 100 ids.
    #[graphql(
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(100), Some(vec!["ids".into()]), None)
    )]
    async fn nodes(&self, ctx: &Context<'_>, ids: Vec<ID>) -> Result<Option<Vec<Option<Node>>>> {
        if ids.len() > 100 {
            return Err(
                crate::domain::Error::BadArgument("`nodes` takes at most 100 ids".into()).into(),
            );
        }
        // Each id stands alone: one the caller may not read is null with its own error at
        // `nodes.<index>`, and the others still resolve.
        let loads = ids.iter().map(|id| load(ctx, id));
        let results = futures_util::future::join_all(loads).await;
        let base = ctx
            .path_node
            .as_ref()
            .map(path_segments)
            .unwrap_or_default();
        Ok(Some(
            results
                .into_iter()
                .enumerate()
                .map(|(i, result)| {
                    result.unwrap_or_else(|err| {
                        let mut path = base.clone();
                        path.push(PathSegment::Index(i));
                        ctx.add_error(err.into_server_error(ctx.item.pos).with_path(path));
                        None
                    })
                })
                .collect(),
        ))
    }
}
