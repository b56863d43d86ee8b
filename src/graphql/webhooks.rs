//! Outbound webhooks over GraphQL: endpoints (the secret shown once, at creation and at each
//! rotation), their deliveries and attempts, a test delivery and redelivery. All of it needs
//! `webhooks:manage`.

use async_graphql::{ComplexObject, Context, ID, InputObject, Object, Result, SimpleObject};

use crate::auth::Scope;
use crate::domain::webhooks::{self, Attempt, Delivery, Endpoint, EndpointPatch, WithSecret};
use crate::graphql::context::tenant;
use crate::graphql::limits::costs::{cost, list_size};
use crate::graphql::limits::{STATEMENT, WRITE};
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::scalars::DateTime;
use crate::graphql::user_errors::{UserError, split};

/// Where webhooks may go, decided by the operator (`CRM_WEBHOOK_ALLOW_PRIVATE`).
#[derive(Clone, Copy, Debug)]
pub struct WebhookRules {
    pub allow_private: bool,
}

/// A URL the organization's changes are POSTed to, signed per Standard Webhooks.
#[derive(SimpleObject)]
#[graphql(complex, name = "WebhookEndpoint")]
pub struct EndpointNode {
    pub id: ID,
    pub url: String,
    pub description: Option<String>,
    /// `customer.created`, `customer.updated`, `customer.deleted`, `customer.restored`,
    /// `activity.logged`, `activity.updated`, `activity.deleted`.
    pub event_types: Vec<String>,
    /// Off when disabled, by a user or after a 410 or sustained failure.
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

impl From<Endpoint> for EndpointNode {
    fn from(e: Endpoint) -> Self {
        Self {
            id: ID(e.id),
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            active: e.active,
            disabled_reason: e.disabled_reason,
            created_at: e.created_at.into(),
            updated_at: e.updated_at.into(),
        }
    }
}

#[ComplexObject]
impl EndpointNode {
    /// Its deliveries, newest first (at most 100).
    #[graphql(
        directive = cost::apply(STATEMENT),
        directive = list_size::apply(None, Some(vec!["first".into()]), None)
    )]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<Vec<DeliveryNode>> {
        let first = u64::try_from(first).unwrap_or(0);
        let rows = webhooks::deliveries(tenant(ctx)?, &self.id, first).await?;
        Ok(rows.into_iter().map(DeliveryNode).collect())
    }
}

/// One event sent (or to be sent) to one endpoint.
pub struct DeliveryNode(Delivery);

#[Object(name = "WebhookDelivery")]
impl DeliveryNode {
    /// The `webhook-id` header: the same on every attempt.
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn endpoint_id(&self) -> ID {
        ID(self.0.endpoint_id.clone())
    }

    async fn event_type(&self) -> &str {
        &self.0.event_type
    }

    /// `PENDING`, `DELIVERED` or `FAILED` (given up).
    async fn status(&self) -> &str {
        &self.0.status
    }

    async fn attempt_count(&self) -> i32 {
        self.0.attempts
    }

    /// When it will be tried again, while pending.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        self.0.next_attempt_at.map(Into::into)
    }

    async fn last_status_code(&self) -> Option<i32> {
        self.0.last_status_code
    }

    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }

    async fn last_latency_ms(&self) -> Option<i32> {
        self.0.last_latency_ms
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn delivered_at(&self) -> Option<DateTime> {
        self.0.delivered_at.map(Into::into)
    }

    /// Every attempt, in order.
    #[graphql(directive = cost::apply(STATEMENT))]
    async fn attempts(&self, ctx: &Context<'_>) -> Result<Vec<AttemptNode>> {
        let rows = webhooks::attempts(tenant(ctx)?, &self.0.id).await?;
        Ok(rows.into_iter().map(AttemptNode::from).collect())
    }
}

#[derive(SimpleObject)]
#[graphql(name = "WebhookAttempt")]
pub struct AttemptNode {
    pub number: i32,
    pub attempted_at: DateTime,
    /// The receiver's status; none when it could not be reached or did not answer in time.
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

impl From<Attempt> for AttemptNode {
    fn from(a: Attempt) -> Self {
        Self {
            number: a.number,
            attempted_at: a.attempted_at.into(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error,
        }
    }
}

#[derive(SimpleObject)]
pub struct WebhookEndpointSecretPayload {
    pub endpoint: Option<EndpointNode>,
    /// `whsec_…`: shown this once. Verify signatures with it.
    pub secret: Option<String>,
    pub user_errors: Vec<UserError>,
}

impl WebhookEndpointSecretPayload {
    fn from(result: crate::domain::Result<WithSecret>) -> Result<Option<Self>> {
        let (made, user_errors) = split(result)?;
        let (endpoint, secret) = match made {
            Some(m) => (Some(m.endpoint.into()), Some(m.secret)),
            None => (None, None),
        };
        Ok(Some(Self {
            endpoint,
            secret,
            user_errors,
        }))
    }
}

#[derive(SimpleObject)]
pub struct WebhookEndpointPayload {
    pub endpoint: Option<EndpointNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteWebhookEndpointPayload {
    pub deleted_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct WebhookDeliveryPayload {
    pub delivery: Option<DeliveryNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(InputObject)]
pub struct CreateWebhookEndpointInput {
    /// `https://…`; loopback and private addresses are refused.
    pub url: String,
    pub event_types: Vec<String>,
    pub description: Option<String>,
}

#[derive(InputObject)]
pub struct UpdateWebhookEndpointInput {
    pub id: ID,
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    /// `true` re-enables a disabled endpoint.
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct WebhookEndpointIdInput {
    pub id: ID,
}

#[derive(InputObject)]
pub struct RotateWebhookSecretInput {
    pub id: ID,
    /// How long the old secret keeps signing beside the new one, in seconds (at most a week).
    #[graphql(default = 86400)]
    pub grace_period_seconds: i32,
}

#[derive(InputObject)]
pub struct RedeliverWebhookInput {
    pub delivery_id: ID,
}

#[derive(Default)]
pub struct WebhookQuery;

#[Object]
impl WebhookQuery {
    /// The organization's webhook endpoints.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(STATEMENT),
        directive = list_size::apply(Some(20), None, None)
    )]
    async fn webhook_endpoints(&self, ctx: &Context<'_>) -> Result<Option<Vec<EndpointNode>>> {
        let rows = webhooks::list(tenant(ctx)?).await?;
        Ok(Some(rows.into_iter().map(EndpointNode::from).collect()))
    }
}

#[derive(Default)]
pub struct WebhookMutation;

fn rules(ctx: &Context<'_>) -> Result<WebhookRules> {
    ctx.data::<WebhookRules>().copied()
}

#[Object]
impl WebhookMutation {
    /// Registers an endpoint; its secret is in the payload, and only there.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn create_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: CreateWebhookEndpointInput,
    ) -> Result<Option<WebhookEndpointSecretPayload>> {
        let made = webhooks::create(
            tenant(ctx)?,
            &input.url,
            &input.event_types,
            input.description,
            rules(ctx)?.allow_private,
        )
        .await;
        WebhookEndpointSecretPayload::from(made)
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn update_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: UpdateWebhookEndpointInput,
    ) -> Result<Option<WebhookEndpointPayload>> {
        let patch = EndpointPatch {
            url: input.url,
            event_types: input.event_types,
            description: input.description.map(Some),
            active: input.active,
        };
        let (endpoint, user_errors) = split(
            webhooks::update(tenant(ctx)?, &input.id, patch, rules(ctx)?.allow_private).await,
        )?;
        Ok(Some(WebhookEndpointPayload {
            endpoint: endpoint.map(Into::into),
            user_errors,
        }))
    }

    /// Deletes an endpoint with its deliveries.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn delete_webhook_endpoint(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointIdInput,
    ) -> Result<Option<DeleteWebhookEndpointPayload>> {
        let (deleted, user_errors) = split(webhooks::delete(tenant(ctx)?, &input.id).await)?;
        Ok(Some(DeleteWebhookEndpointPayload {
            deleted_id: deleted.map(ID),
            user_errors,
        }))
    }

    /// A new secret; deliveries are signed with both during the grace period.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn rotate_webhook_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateWebhookSecretInput,
    ) -> Result<Option<WebhookEndpointSecretPayload>> {
        let grace = chrono::Duration::seconds(i64::from(input.grace_period_seconds));
        WebhookEndpointSecretPayload::from(
            webhooks::rotate_secret(tenant(ctx)?, &input.id, grace).await,
        )
    }

    /// Queues a `webhook.test` delivery to the endpoint.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn send_test_webhook(
        &self,
        ctx: &Context<'_>,
        input: WebhookEndpointIdInput,
    ) -> Result<Option<WebhookDeliveryPayload>> {
        let (delivery, user_errors) = split(webhooks::send_test(tenant(ctx)?, &input.id).await)?;
        Ok(Some(WebhookDeliveryPayload {
            delivery: delivery.map(DeliveryNode),
            user_errors,
        }))
    }

    /// Sends a delivery again, with the same `webhook-id`.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::WebhooksManage])),
        directive = cost::apply(WRITE)
    )]
    async fn redeliver_webhook(
        &self,
        ctx: &Context<'_>,
        input: RedeliverWebhookInput,
    ) -> Result<Option<WebhookDeliveryPayload>> {
        let (delivery, user_errors) =
            split(webhooks::redeliver(tenant(ctx)?, &input.delivery_id).await)?;
        Ok(Some(WebhookDeliveryPayload {
            delivery: delivery.map(DeliveryNode),
            user_errors,
        }))
    }
}
