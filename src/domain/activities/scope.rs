//! Where every activity read starts: the tenant's rows, through its `Tenant`.

use entity::activities;
use sea_orm::{ColumnTrait, QueryFilter, Select};

use crate::domain::Tenant;

/// The tenant's activities that are not deleted.
pub fn live(t: &Tenant) -> Select<activities::Entity> {
    t.find::<activities::Entity>()
        .filter(activities::Column::DeletedAt.is_null())
}
