//! Where every customer read starts: the tenant's rows, through its `Tenant`.

use entity::customers;
use sea_orm::{ColumnTrait, QueryFilter, Select};

use crate::domain::Tenant;

/// All of the tenant's customers, soft-deleted ones included.
pub fn scoped(t: &Tenant) -> Select<customers::Entity> {
    t.find::<customers::Entity>()
}

/// The tenant's live customers.
pub fn live(t: &Tenant) -> Select<customers::Entity> {
    scoped(t).filter(customers::Column::DeletedAt.is_null())
}
