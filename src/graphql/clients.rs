//! API clients over GraphQL: listed, created (secret shown once), rotated, revoked. All of
//! it needs `clients:manage`.

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use chrono::Duration;

use crate::auth::Scope;
use crate::domain::clients::{self, ApiClient, IssuedSecret};
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::scalars::DateTime;
use crate::graphql::user_errors::{UserError, split};

/// An integration that signs in with OAuth2 client credentials (`POST /oauth/token`).
pub struct ApiClientNode(pub ApiClient);

#[Object(name = "ApiClient")]
impl ApiClientNode {
    /// The OAuth2 `client_id`; also its Relay id (`node(id:)`).
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    /// The scopes a token for this client may carry.
    async fn scopes(&self) -> Vec<&'static str> {
        self.0.scopes.iter().map(|s| s.as_str()).collect()
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn secret_rotated_at(&self) -> DateTime {
        self.0.secret_rotated_at.into()
    }

    /// Set once the client is revoked: it can no longer get tokens, and its tokens stop working.
    async fn revoked_at(&self) -> Option<DateTime> {
        self.0.revoked_at.map(Into::into)
    }
}

#[derive(SimpleObject)]
pub struct ApiClientSecretPayload {
    pub api_client: Option<ApiClientNode>,
    /// Shown this once; only a hash is kept.
    pub client_secret: Option<String>,
    pub user_errors: Vec<UserError>,
}

impl ApiClientSecretPayload {
    fn from(result: crate::domain::Result<IssuedSecret>) -> Result<Option<Self>> {
        let (issued, user_errors) = split(result)?;
        let (api_client, client_secret) = match issued {
            Some(i) => (Some(ApiClientNode(i.client)), Some(i.secret)),
            None => (None, None),
        };
        Ok(Some(Self {
            api_client,
            client_secret,
            user_errors,
        }))
    }
}

#[derive(SimpleObject)]
pub struct RevokeApiClientPayload {
    pub api_client: Option<ApiClientNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateApiClientInput {
    pub name: String,
    /// Each must be a scope the caller's token holds.
    pub scopes: Vec<String>,
}

#[derive(InputObject)]
pub struct RotateApiClientSecretInput {
    pub id: ID,
    /// How long the old secret keeps working, in seconds (at most a week).
    #[graphql(default = 3600)]
    pub grace_period_seconds: i32,
}

#[derive(InputObject)]
pub struct RevokeApiClientInput {
    pub id: ID,
}

#[derive(Default)]
pub struct ClientQuery;

#[Object]
impl ClientQuery {
    /// The organization's API clients, revoked ones included.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ClientsManage])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(100), None, None)
    )]
    async fn api_clients(&self, ctx: &Context<'_>) -> Result<Option<Vec<ApiClientNode>>> {
        let clients = clients::list(tenant(ctx)?).await?;
        Ok(Some(clients.into_iter().map(ApiClientNode).collect()))
    }
}

#[derive(Default)]
pub struct ClientMutation;

#[Object]
impl ClientMutation {
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ClientsManage])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn create_api_client(
        &self,
        ctx: &Context<'_>,
        input: CreateApiClientInput,
    ) -> Result<Option<ApiClientSecretPayload>> {
        ApiClientSecretPayload::from(
            clients::create(tenant(ctx)?, &input.name, &input.scopes).await,
        )
    }

    /// Issues a new secret; the old one keeps working for the grace period.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ClientsManage])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn rotate_api_client_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateApiClientSecretInput,
    ) -> Result<Option<ApiClientSecretPayload>> {
        let grace = Duration::seconds(i64::from(input.grace_period_seconds));
        ApiClientSecretPayload::from(clients::rotate_secret(tenant(ctx)?, &input.id, grace).await)
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ClientsManage])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn revoke_api_client(
        &self,
        ctx: &Context<'_>,
        input: RevokeApiClientInput,
    ) -> Result<Option<RevokeApiClientPayload>> {
        let (client, user_errors) = split(clients::revoke(tenant(ctx)?, &input.id).await)?;
        Ok(Some(RevokeApiClientPayload {
            api_client: client.map(ApiClientNode),
            user_errors,
        }))
    }
}
