use sea_orm::entity::prelude::*;

/// Where a tenant wants to hear about changes, and how deliveries there are signed.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    #[sea_orm(column_type = "Text")]
    pub url: String,
    pub description: Option<String>,
    /// A JSON array of event types.
    #[sea_orm(column_type = "Text")]
    pub event_types: String,
    /// Space-separated scopes of the creator: what payloads show.
    #[sea_orm(column_type = "Text")]
    pub scopes: String,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub failing_since: Option<DateTimeUtc>,
    /// The tenant's last event `seq` when the endpoint was made: it hears the ones after.
    pub after_seq: i64,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
