use sea_orm::entity::prelude::*;

/// One provider event received through a social connection.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inbound_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub connection_id: String,
    pub event_id: String,
    /// PROCESSED or UNMAPPABLE.
    pub status: String,
    pub reason: Option<String>,
    pub customer_id: Option<String>,
    pub activity_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub payload: Option<String>,
    pub received_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
