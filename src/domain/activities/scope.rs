//! The tenant boundary for activities: every read starts here.

use entity::activities;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

/// The org's activities that are not deleted.
pub fn live(org: &str) -> Select<activities::Entity> {
    activities::Entity::find()
        .filter(activities::Column::OrgId.eq(org))
        .filter(activities::Column::DeletedAt.is_null())
}
