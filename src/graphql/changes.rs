//! `changes`: the delta feed for syncing integrations.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};

use super::activities::ActivityNode;
use super::context::{principal, tenant};
use super::customers::CustomerNode;
use super::errors::ApiError;
use super::permissions::{readable_fields, requires_scopes};
use super::subscriptions::{ChangeOp, snapshot};
use crate::auth::Scope;
use crate::domain::changes;
use crate::events::{EntityKind, Event};
use crate::graphql::scalars::DateTime;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::events::EntityKind")]
pub enum ChangeEntity {
    Customer,
    Activity,
}

impl ChangeEntity {
    fn name(self) -> &'static str {
        match self {
            ChangeEntity::Customer => "customer",
            ChangeEntity::Activity => "activity",
        }
    }

    fn scope(self) -> Scope {
        match self {
            ChangeEntity::Customer => Scope::CustomersRead,
            ChangeEntity::Activity => Scope::ActivitiesRead,
        }
    }
}

/// One change, with the entity as it was right after it.
pub struct ChangeEvent(Event);

#[Object]
impl ChangeEvent {
    /// The event's position in the log (a decimal 64-bit integer), increasing.
    async fn seq(&self) -> String {
        self.0.seq.to_string()
    }

    async fn entity(&self) -> Option<ChangeEntity> {
        Some(self.0.entity.into())
    }

    async fn entity_id(&self) -> ID {
        ID(self.0.entity_id.clone())
    }

    async fn op(&self) -> Option<ChangeOp> {
        Some(self.0.op.into())
    }

    /// The fields whose values changed (all of them for a creation), among those the caller
    /// may read.
    async fn changed_fields(&self, ctx: &Context<'_>) -> Vec<String> {
        let ty = match self.0.entity {
            EntityKind::Customer => "Customer",
            EntityKind::Activity => "Activity",
        };
        readable_fields(ctx, ty, &self.0.changed_fields)
    }

    async fn occurred_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    /// For customer events: the customer after the change (deleted ones carry `deletedAt`).
    async fn customer(&self) -> Result<Option<CustomerNode>> {
        (self.0.entity == EntityKind::Customer)
            .then(|| snapshot(&self.0).map(CustomerNode))
            .transpose()
    }

    /// For activity events: the activity after the change.
    async fn activity(&self) -> Result<Option<ActivityNode>> {
        (self.0.entity == EntityKind::Activity)
            .then(|| snapshot(&self.0).map(ActivityNode))
            .transpose()
    }
}

#[derive(SimpleObject)]
pub struct ChangeFeed {
    pub events: Vec<ChangeEvent>,
    /// Pass as `after` to continue from here (also when `events` is empty).
    pub end_cursor: String,
    /// More events follow right away; otherwise poll again later (or subscribe).
    pub has_more: bool,
}

#[derive(Default)]
pub struct ChangesQuery;

#[Object]
impl ChangesQuery {
    /// The tenant's changes after `after` (from the start of the retained log when left out),
    /// oldest first, at most `first` (up to 500). Applying them in order keeps a replica
    /// exact. `entities` defaults to every kind the token may read.
    #[graphql(
        directive = requires_scopes::apply(vec![vec!["customers:read".into()], vec!["activities:read".into()]]),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(100), Some(vec!["first".into()]), Some(vec!["events".into()]))
    )]
    async fn changes(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
        #[graphql(default = 100)] first: i32,
        entities: Option<Vec<ChangeEntity>>,
    ) -> Result<Option<ChangeFeed>> {
        let who = principal(ctx)?;
        let wanted = entities.unwrap_or_else(|| {
            [ChangeEntity::Customer, ChangeEntity::Activity]
                .into_iter()
                .filter(|e| who.has(e.scope()))
                .collect()
        });
        if let Some(denied) = wanted.iter().find(|e| !who.has(e.scope())) {
            return Err(ApiError::Forbidden(denied.scope()).into());
        }
        let names: Vec<&'static str> = wanted.iter().map(|e| e.name()).collect();
        let first = u64::try_from(first).map_err(|_| {
            crate::domain::Error::BadArgument("`first` must not be negative".into())
        })?;
        let page = changes::list(tenant(ctx)?, after.as_deref(), first, &names).await?;
        Ok(Some(ChangeFeed {
            events: page.events.into_iter().map(ChangeEvent).collect(),
            end_cursor: page.end_cursor,
            has_more: page.has_more,
        }))
    }
}
