//! The tenant boundary: every customer read starts here, so a query without the org filter
//! cannot be written by accident.

use entity::customers;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Select};

/// All of the org's customers, soft-deleted ones included.
pub fn scoped(org: &str) -> Select<customers::Entity> {
    customers::Entity::find().filter(customers::Column::OrgId.eq(org))
}

/// The org's live customers.
pub fn live(org: &str) -> Select<customers::Entity> {
    scoped(org).filter(customers::Column::DeletedAt.is_null())
}
