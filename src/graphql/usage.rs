//! Usage figures per caller and day, for an organization's administrators
//! (`clients:manage`): what each API client and user ran, spent, failed and was refused.

use async_graphql::{Context, ID, Object, Result, SimpleObject};

use crate::auth::Scope;
use crate::domain::usage::{Meter, UsageDay};
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::scalars::Date;

/// The widest range one `usage` query may ask for, in days.
const MAX_DAYS: i64 = 366;

/// What one caller did on one day (UTC).
#[derive(SimpleObject)]
pub struct Usage {
    pub day: Date,
    /// `client:<id>` for an API client's tokens, `user:<subject>` for a user's.
    pub caller: String,
    /// The API client, when the caller is one.
    pub api_client_id: Option<ID>,
    /// Operations run (each operation of a batch counts).
    pub requests: i64,
    /// What they cost, in the units of the schema's `@cost` directives.
    pub cost: i64,
    /// Operations whose answer held at least one error.
    pub errors: i64,
    /// Operations refused by the rate limit.
    pub rejections: i64,
}

impl From<UsageDay> for Usage {
    fn from(day: UsageDay) -> Self {
        Self {
            day: Date(day.day),
            api_client_id: day
                .caller
                .strip_prefix("client:")
                .map(|id| ID(id.to_owned())),
            caller: day.caller,
            requests: day.counts.requests,
            cost: day.counts.cost,
            errors: day.counts.errors,
            rejections: day.counts.rejections,
        }
    }
}

#[derive(Default)]
pub struct UsageQuery;

#[Object]
impl UsageQuery {
    /// Usage by day and caller, from `from` to `to` (inclusive, at most 366 days), of one
    /// caller (`client:<id>`, `user:<subject>`) or all. Figures of the current minute may
    /// still be on their way from other instances.
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ClientsManage])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT),
        directive = crate::graphql::limits::costs::list_size::apply(Some(100), None, None)
    )]
    async fn usage(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        caller: Option<String>,
    ) -> Result<Option<Vec<Usage>>> {
        let tenant = tenant(ctx)?;
        let days = (to.0 - from.0).num_days();
        if !(0..MAX_DAYS).contains(&days) {
            return Err(crate::domain::Error::BadArgument(format!(
                "`from` must not be after `to`, and the range must span at most {MAX_DAYS} days"
            ))
            .into());
        }
        // This instance's latest counts first, so a caller sees its own traffic.
        if let Err(err) = ctx.data::<Meter>()?.flush().await {
            tracing::warn!(error = %err, "usage not flushed before reading it");
        }
        let days = tenant.usage(from.0, to.0, caller.as_deref()).await?;
        Ok(Some(days.into_iter().map(Usage::from).collect()))
    }
}
