//! Where every customer read starts: the tenant's rows, through its `Tenant`.

use entity::customers;
use sea_orm::Select;

use crate::domain::Tenant;

/// All of the tenant's customers, soft-deleted ones included.
pub fn scoped(t: &Tenant) -> Select<customers::Entity> {
    t.find::<customers::Entity>()
}
