//! Social connections over GraphQL: where a network's webhooks arrive (the secrets are
//! write-only), and what arrived through them. Managing them needs `webhooks:manage`; making
//! or changing one also needs the writes it will do (`customers:write`, `activities:write`).

use async_graphql::{ComplexObject, Context, Enum, ID, InputObject, Object, Result, SimpleObject};

use crate::auth::Scope;
use crate::domain::social::{
    self, Connection, ConnectionPatch, InboundMessage, InboundStatus, Network, NewConnection,
};
use crate::graphql::context::tenant;
use crate::graphql::limits::costs::{cost, list_size};
use crate::graphql::limits::{STATEMENT, WRITE};
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::scalars::DateTime;
use crate::graphql::user_errors::{UserError, split};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "SocialNetwork")]
pub enum NetworkValue {
    /// Facebook pages and Instagram accounts: verified by `X-Hub-Signature-256`.
    Meta,
    /// X (Account Activity API): verified by `x-twitter-webhooks-signature`.
    X,
    /// Any sender of Standard Webhooks in this service's message format.
    Generic,
}

impl From<NetworkValue> for Network {
    fn from(n: NetworkValue) -> Self {
        match n {
            NetworkValue::Meta => Network::Meta,
            NetworkValue::X => Network::X,
            NetworkValue::Generic => Network::Generic,
        }
    }
}

impl From<Network> for NetworkValue {
    fn from(n: Network) -> Self {
        match n {
            Network::Meta => NetworkValue::Meta,
            Network::X => NetworkValue::X,
            Network::Generic => NetworkValue::Generic,
        }
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "InboundMessageStatus")]
pub enum StatusValue {
    /// Logged as a `SOCIAL_MESSAGE` activity.
    Processed,
    /// Verified but not mappable to a customer and an activity: kept for inspection.
    Unmappable,
}

impl From<StatusValue> for InboundStatus {
    fn from(s: StatusValue) -> Self {
        match s {
            StatusValue::Processed => InboundStatus::Processed,
            StatusValue::Unmappable => InboundStatus::Unmappable,
        }
    }
}

/// A connection to a social network: its webhooks arrive at `url`.
#[derive(SimpleObject)]
#[graphql(complex, name = "SocialConnection")]
pub struct ConnectionNode {
    pub id: ID,
    pub network: NetworkValue,
    /// The page, account or user the network sends events for.
    pub account_id: String,
    /// Where to point the network's webhooks, after this server's public origin:
    /// `/webhooks/inbound/{meta|x|generic}/{id}`.
    pub url: String,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl From<Connection> for ConnectionNode {
    fn from(c: Connection) -> Self {
        Self {
            url: c.path(),
            id: ID(c.id),
            network: c.network.into(),
            account_id: c.account_id,
            created_at: c.created_at.into(),
            updated_at: c.updated_at.into(),
        }
    }
}

#[ComplexObject]
impl ConnectionNode {
    /// What arrived through it, newest first (at most 100). It tells which customers and
    /// activities the messages became, so it needs the scopes to read them.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::CustomersRead, Scope::ActivitiesRead])),
        directive = cost::apply(STATEMENT),
        directive = list_size::apply(None, Some(vec!["first".into()]), None)
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        status: Option<StatusValue>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<MessageNode>> {
        let first = u64::try_from(first).unwrap_or(0);
        let rows = social::messages(tenant(ctx)?, &self.id, status.map(Into::into), first).await?;
        Ok(rows.into_iter().map(MessageNode).collect())
    }
}

/// One provider event received through a connection.
pub struct MessageNode(InboundMessage);

#[Object(name = "InboundMessage")]
impl MessageNode {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The provider's id of the event (or `sha256:…` of what carried none).
    async fn event_id(&self) -> &str {
        &self.0.event_id
    }

    async fn status(&self) -> StatusValue {
        match self.0.status {
            InboundStatus::Processed => StatusValue::Processed,
            InboundStatus::Unmappable => StatusValue::Unmappable,
        }
    }

    /// Why it could not be mapped.
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }

    /// The customer it was logged on (fetch it with `node`).
    async fn customer_id(&self) -> Option<ID> {
        self.0.customer_id.clone().map(ID)
    }

    /// The activity it became.
    async fn activity_id(&self) -> Option<ID> {
        self.0.activity_id.clone().map(ID)
    }

    /// What arrived, as it arrived, when it could not be mapped (it names people: guarded
    /// like their handles).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    async fn payload(&self) -> Option<&str> {
        self.0.payload.as_deref()
    }

    async fn received_at(&self) -> DateTime {
        self.0.received_at.into()
    }
}

#[derive(SimpleObject)]
pub struct SocialConnectionPayload {
    pub connection: Option<ConnectionNode>,
    pub user_errors: Vec<UserError>,
}

impl SocialConnectionPayload {
    fn from(result: crate::domain::Result<Connection>) -> Result<Option<Self>> {
        let (connection, user_errors) = split(result)?;
        Ok(Some(Self {
            connection: connection.map(Into::into),
            user_errors,
        }))
    }
}

#[derive(SimpleObject)]
pub struct DeleteSocialConnectionPayload {
    pub deleted_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateSocialConnectionInput {
    pub network: NetworkValue,
    /// META: the page or Instagram account id; X: the user id the events are for; GENERIC:
    /// any label.
    pub account_id: String,
    /// META: the app secret; X: the consumer secret; GENERIC: the sender's `whsec_…` key.
    /// Write-only.
    pub app_secret: String,
    /// META only: the token you give Meta when subscribing the URL. Write-only.
    pub verify_token: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateSocialConnectionInput {
    pub id: ID,
    pub account_id: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
}

#[derive(InputObject)]
pub struct SocialConnectionIdInput {
    pub id: ID,
}

#[derive(Default)]
pub struct SocialQuery;

#[Object]
impl SocialQuery {
    /// The organization's social connections.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(STATEMENT),
        directive = list_size::apply(Some(20), None, None)
    )]
    async fn social_connections(&self, ctx: &Context<'_>) -> Result<Option<Vec<ConnectionNode>>> {
        let rows = social::list(tenant(ctx)?).await?;
        Ok(Some(rows.into_iter().map(ConnectionNode::from).collect()))
    }
}

#[derive(Default)]
pub struct SocialMutation;

#[Object]
impl SocialMutation {
    /// Connects a social network: point its webhooks at the connection's `url`. Messages
    /// that arrive become `SOCIAL_MESSAGE` activities (and new senders `LEAD` customers).
    #[graphql(
        directive = requires_scopes::apply(all_of(&[
            Scope::WebhooksManage,
            Scope::CustomersWrite,
            Scope::ActivitiesWrite
        ])),
        directive = cost::apply(WRITE)
    )]
    async fn create_social_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateSocialConnectionInput,
    ) -> Result<Option<SocialConnectionPayload>> {
        let made = social::create(
            tenant(ctx)?,
            NewConnection {
                network: input.network.into(),
                account_id: input.account_id,
                app_secret: input.app_secret,
                verify_token: input.verify_token,
            },
        )
        .await;
        SocialConnectionPayload::from(made)
    }

    /// Changes a connection's account or secrets (a new app secret takes effect at once).
    #[graphql(
        directive = requires_scopes::apply(all_of(&[
            Scope::WebhooksManage,
            Scope::CustomersWrite,
            Scope::ActivitiesWrite
        ])),
        directive = cost::apply(WRITE)
    )]
    async fn update_social_connection(
        &self,
        ctx: &Context<'_>,
        input: UpdateSocialConnectionInput,
    ) -> Result<Option<SocialConnectionPayload>> {
        let patch = ConnectionPatch {
            account_id: input.account_id,
            app_secret: input.app_secret,
            verify_token: input.verify_token,
        };
        SocialConnectionPayload::from(social::update(tenant(ctx)?, &input.id, patch).await)
    }

    /// Disconnects: its URL answers 404 from now on. The activities it logged stay.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn delete_social_connection(
        &self,
        ctx: &Context<'_>,
        input: SocialConnectionIdInput,
    ) -> Result<Option<DeleteSocialConnectionPayload>> {
        let (deleted, user_errors) = split(social::delete(tenant(ctx)?, &input.id).await)?;
        Ok(Some(DeleteSocialConnectionPayload {
            deleted_id: deleted.map(ID),
            user_errors,
        }))
    }
}
