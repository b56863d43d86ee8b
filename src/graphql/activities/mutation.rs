use async_graphql::{Context, ID, Object, Result, SimpleObject};

use super::inputs::{DeleteActivityInput, LogActivityInput, UpdateActivityInput};
use super::types::ActivityNode;
use crate::auth::Scope;
use crate::domain::activities;
use crate::domain::ids::ActivityId;
use crate::graphql::context::tenant;
use crate::graphql::permissions::{all_of, requires_scopes};
use crate::graphql::user_errors::{UserError, split};

#[derive(Default)]
pub struct ActivityMutation;

#[derive(SimpleObject)]
pub struct LogActivityPayload {
    /// The record as the write left it; reading it needs the read scope too (a write scope
    /// alone must not read what it did not write, as an empty update would).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])))]
    pub activity: Option<ActivityNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct UpdateActivityPayload {
    /// The record as the write left it; reading it needs the read scope too (a write scope
    /// alone must not read what it did not write, as an empty update would).
    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::ActivitiesRead])))]
    pub activity: Option<ActivityNode>,
    pub user_errors: Vec<UserError>,
}

#[derive(SimpleObject)]
pub struct DeleteActivityPayload {
    pub deleted_activity_id: Option<ID>,
    pub user_errors: Vec<UserError>,
}

#[Object]
impl ActivityMutation {
    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn log_activity(
        &self,
        ctx: &Context<'_>,
        input: LogActivityInput,
    ) -> Result<Option<LogActivityPayload>> {
        let (activity, user_errors) = split(activities::log(tenant(ctx)?, input.into()).await)?;
        Ok(Some(LogActivityPayload {
            activity: activity.map(ActivityNode),
            user_errors,
        }))
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn update_activity(
        &self,
        ctx: &Context<'_>,
        input: UpdateActivityInput,
    ) -> Result<Option<UpdateActivityPayload>> {
        let (id, patch) = input.into_parts();
        let (activity, user_errors) = split(activities::update(tenant(ctx)?, &id, patch).await)?;
        Ok(Some(UpdateActivityPayload {
            activity: activity.map(ActivityNode),
            user_errors,
        }))
    }

    #[graphql(
        directive = requires_scopes::apply(all_of(&[Scope::ActivitiesWrite])),
        directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::WRITE)
    )]
    async fn delete_activity(
        &self,
        ctx: &Context<'_>,
        input: DeleteActivityInput,
    ) -> Result<Option<DeleteActivityPayload>> {
        let t = tenant(ctx)?;
        let id = ActivityId::from_client(&input.id);
        let result = async { activities::delete(t, &id?, input.expected_version).await }.await;
        let (activity, user_errors) = split(result)?;
        Ok(Some(DeleteActivityPayload {
            deleted_activity_id: activity.map(|a| a.id.into()),
            user_errors,
        }))
    }
}
