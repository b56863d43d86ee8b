//! Live changes: `customerChanged` and `activityChanged`, fed by the event log through the
//! process's `EventHub`. Each event is resolved from its snapshot (no database read per
//! subscriber per event), only for the subscriber's tenant, and its fields pass the same
//! scope checks as a query's.

use std::sync::Arc;

use async_graphql::{
    ComplexObject, Context, Enum, ErrorExtensions, ID, InputObject, Result, SimpleObject,
    Subscription,
};
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use super::activities::{ActivityKind, ActivityNode};
use super::context::{principal, store};
use super::customers::{CustomerNode, LifecycleStage};
use super::errors::ApiError;
use super::permissions::{all_of, readable_fields, requires_scopes};
use crate::auth::Scope;
use crate::domain::activities::Activity;
use crate::domain::customers::Customer;
use crate::events::{EntityKind, Event};
use crate::graphql::scalars::DateTime;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::events::Op")]
pub enum ChangeOp {
    Created,
    Updated,
    Deleted,
    Restored,
}

/// What every change carries besides the changed object.
#[derive(SimpleObject)]
struct ChangeMeta {
    op: ChangeOp,
    /// The event's position in the log (a decimal 64-bit integer), increasing.
    seq: String,
    /// Read through `changedFields`, which leaves out what the caller may not read.
    #[graphql(skip)]
    changed: Vec<String>,
    occurred_at: DateTime,
}

impl ChangeMeta {
    fn of(event: &Event) -> Option<Self> {
        Some(Self {
            op: ChangeOp::from(event.op),
            seq: event.seq.to_string(),
            changed: event.changed_fields.clone(),
            occurred_at: event.created_at.into(),
        })
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct CustomerChange {
    #[graphql(flatten)]
    meta: ChangeMeta,
    #[graphql(skip)]
    customer: Customer,
}

#[ComplexObject]
impl CustomerChange {
    /// The fields whose values changed (all of them for a creation), among those the caller
    /// may read.
    async fn changed_fields(&self, ctx: &Context<'_>) -> Vec<String> {
        readable_fields(ctx, "Customer", &self.meta.changed)
    }

    /// The customer as it is after the change.
    async fn customer(&self) -> CustomerNode {
        CustomerNode(self.customer.clone())
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct ActivityChange {
    #[graphql(flatten)]
    meta: ChangeMeta,
    #[graphql(skip)]
    activity: Activity,
}

#[ComplexObject]
impl ActivityChange {
    /// The fields whose values changed (all of them for a creation), among those the caller
    /// may read.
    async fn changed_fields(&self, ctx: &Context<'_>) -> Vec<String> {
        readable_fields(ctx, "Activity", &self.meta.changed)
    }

    /// The activity as it is after the change.
    async fn activity(&self) -> ActivityNode {
        ActivityNode(self.activity.clone())
    }
}

/// Which customer changes to receive; fields combine with AND, lists with OR.
#[derive(InputObject, Default)]
pub struct CustomerChangeFilter {
    pub ids: Option<Vec<ID>>,
    pub ops: Option<Vec<ChangeOp>>,
    pub lifecycle_stages: Option<Vec<LifecycleStage>>,
}

/// Which activity changes to receive; fields combine with AND, lists with OR.
#[derive(InputObject, Default)]
pub struct ActivityChangeFilter {
    pub ids: Option<Vec<ID>>,
    pub customer_ids: Option<Vec<ID>>,
    pub ops: Option<Vec<ChangeOp>>,
    pub kinds: Option<Vec<ActivityKind>>,
}

fn listed<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(value))
}

fn listed_id(list: &Option<Vec<ID>>, value: &str) -> bool {
    list.as_ref()
        .is_none_or(|l| l.iter().any(|id| id.as_str() == value))
}

/// The tenant's events of one entity, as typed changes, until the subscriber falls too far
/// behind (then one LAGGED error, and the stream ends: the client resubscribes and resyncs).
/// The entity an event carries, as it was after the change; one that cannot be read is an
/// INTERNAL error (logged with its `seq`), never passed over in silence.
pub fn snapshot<S: crate::events::Snapshot>(event: &Event) -> Result<S> {
    event
        .snapshot()
        .map_err(|err| crate::domain::Error::Internal(Box::new(err)).into())
}

fn changes<T, F>(
    ctx: &Context<'_>,
    scope: Scope,
    entity: EntityKind,
    pick: F,
) -> Result<impl Stream<Item = Result<T>> + use<T, F>>
where
    T: Send + 'static,
    F: Fn(&Event) -> Option<Result<T>> + Send + Sync + 'static,
{
    let who = principal(ctx)?;
    if !who.has(scope) {
        return Err(ApiError::Forbidden(scope).into());
    }
    let org = who.org.clone();
    let rx = store(ctx)?.events.subscribe();
    let state = (rx, org, Arc::new(pick), false);
    Ok(futures_util::stream::unfold(
        state,
        move |(mut rx, org, pick, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match rx.recv().await {
                    Ok(event) => {
                        if event.org_id != org || event.entity != entity {
                            continue;
                        }
                        if let Some(item) = pick(&event) {
                            return Some((item, (rx, org, pick, false)));
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let err = async_graphql::Error::new(format!(
                        "this subscription fell {missed} events behind and was ended; resubscribe and resync"
                    ))
                    .extend_with(|_, e| e.set("code", "LAGGED"));
                        return Some((Err(err), (rx, org, pick, true)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    ))
}

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// Customers of the caller's organization as they are created, updated, deleted and
    /// restored.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::CustomersRead])))]
    async fn customer_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<CustomerChangeFilter>,
    ) -> Result<impl Stream<Item = Result<CustomerChange>> + use<>> {
        let filter = filter.unwrap_or_default();
        changes(
            ctx,
            Scope::CustomersRead,
            EntityKind::Customer,
            move |event| {
                let meta = ChangeMeta::of(event)?;
                let customer: Customer = match snapshot(event) {
                    Ok(customer) => customer,
                    Err(err) => return Some(Err(err)),
                };
                let wanted = listed_id(&filter.ids, customer.id.as_str())
                    && listed(&filter.ops, &meta.op)
                    && listed(
                        &filter.lifecycle_stages,
                        &LifecycleStage::from(customer.lifecycle_stage),
                    );
                wanted.then_some(Ok(CustomerChange { meta, customer }))
            },
        )
    }

    /// Activities of the caller's organization as they are logged, updated and deleted.
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])))]
    async fn activity_changed(
        &self,
        ctx: &Context<'_>,
        filter: Option<ActivityChangeFilter>,
    ) -> Result<impl Stream<Item = Result<ActivityChange>> + use<>> {
        let filter = filter.unwrap_or_default();
        changes(
            ctx,
            Scope::ActivitiesRead,
            EntityKind::Activity,
            move |event| {
                let meta = ChangeMeta::of(event)?;
                let activity: Activity = match snapshot(event) {
                    Ok(activity) => activity,
                    Err(err) => return Some(Err(err)),
                };
                let wanted = listed_id(&filter.ids, activity.id.as_str())
                    && listed_id(&filter.customer_ids, activity.customer_id.as_str())
                    && listed(&filter.ops, &meta.op)
                    && listed(&filter.kinds, &ActivityKind::from(activity.kind));
                wanted.then_some(Ok(ActivityChange { meta, activity }))
            },
        )
    }
}
