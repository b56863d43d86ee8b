use async_graphql::{Context, Enum, ID, Object, Result};

use crate::domain::activities::{self, Activity, ActivityFilter};
use crate::domain::ids::CustomerId;
use crate::domain::projection::Projection;
use crate::graphql::connection::connection;
use crate::graphql::context::tenant;
use crate::graphql::customers::CustomerNode;
use crate::graphql::loaders::{Args, Loaders};
use crate::graphql::scalars::DateTime;
use crate::graphql::users::UserNode;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::activities::ActivityKind")]
pub enum ActivityKind {
    Call,
    Email,
    Meeting,
    Note,
    Task,
    SocialMessage,
}

/// Something that happened with a customer: a call, an email, a meeting, a note, a task or
/// a social message.
pub struct ActivityNode(pub Activity);

impl From<Activity> for ActivityNode {
    fn from(a: Activity) -> Self {
        Self(a)
    }
}

#[Object(name = "Activity")]
impl ActivityNode {
    pub async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn kind(&self) -> ActivityKind {
        self.0.kind.into()
    }

    async fn subject(&self) -> &str {
        &self.0.subject
    }

    async fn body(&self) -> Option<&str> {
        self.0.body.as_deref()
    }

    async fn occurred_at(&self) -> DateTime {
        self.0.occurred_at.into()
    }

    /// For tasks: when it is due.
    async fn due_at(&self) -> Option<DateTime> {
        self.0.due_at.map(Into::into)
    }

    async fn completed_at(&self) -> Option<DateTime> {
        self.0.completed_at.map(Into::into)
    }

    /// The system the activity came from, when an integration logged it.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }

    async fn external_id(&self) -> Option<&str> {
        self.0.external_id.as_deref()
    }

    async fn version(&self) -> i32 {
        self.0.version
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// The customer it was logged against; null once that customer is in the trash or when
    /// the caller may not read customers.
    #[graphql(
        directive = crate::graphql::permissions::requires_scopes::apply(crate::graphql::permissions::all_of(&[crate::auth::Scope::CustomersRead])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT)
    )]
    async fn customer(&self, ctx: &Context<'_>) -> Result<Option<CustomerNode>> {
        let customer = ctx
            .data::<Loaders>()?
            .customers()
            .load_one(self.0.customer_id.clone())
            .await?;
        Ok(customer.map(CustomerNode))
    }

    #[graphql(directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT))]
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<UserNode>> {
        let Some(author) = &self.0.author_id else {
            return Ok(None);
        };
        let user = ctx
            .data::<Loaders>()?
            .users()
            .load_one(author.clone())
            .await?;
        Ok(user.map(UserNode))
    }
}

/// The columns an activity connection's selection needs: a page fetches nothing else.
pub fn projection(ctx: &Context<'_>) -> Projection<entity::activities::Entity> {
    use entity::activities::Column as C;
    crate::graphql::connection::projection(
        ctx,
        &[
            ("id", C::Id),
            ("customer", C::CustomerId),
            ("kind", C::Kind),
            ("subject", C::Subject),
            ("body", C::Body),
            ("occurredAt", C::OccurredAt),
            ("dueAt", C::DueAt),
            ("completedAt", C::CompletedAt),
            ("author", C::AuthorId),
            ("source", C::Source),
            ("externalId", C::ExternalId),
            ("version", C::Version),
            ("createdAt", C::CreatedAt),
            ("updatedAt", C::UpdatedAt),
        ],
        // Cursors add their own columns (`Page::projection`).
        &[],
    )
}

/// `totalCount` of an activity list: what it counts.
pub enum ActivityTotal {
    Matching(Box<ActivityFilter>),
    /// Batched across the parents of a nested connection.
    OfCustomer(CustomerId, Args<ActivityFilter>),
}

impl ActivityTotal {
    pub async fn resolve(&self, ctx: &Context<'_>) -> Result<u64> {
        match self {
            ActivityTotal::Matching(filter) => Ok(activities::count(tenant(ctx)?, filter).await?),
            ActivityTotal::OfCustomer(id, filter) => {
                let n = ctx
                    .data::<Loaders>()?
                    .activity_counts()
                    .load_one((id.clone(), filter.clone()))
                    .await?;
                Ok(n.unwrap_or(0))
            }
        }
    }
}

connection!(
    ActivityConnection,
    ActivityEdge,
    ActivityNode,
    ActivityTotal
);
