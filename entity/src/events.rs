use sea_orm::entity::prelude::*;

/// One change to one entity, appended in the transaction that made it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub seq: i64,
    pub org_id: String,
    /// `customer` or `activity`.
    pub entity: String,
    pub entity_id: String,
    /// CREATED, UPDATED, DELETED or RESTORED.
    pub op: String,
    /// A JSON array of the GraphQL field names that changed.
    #[sea_orm(column_type = "Text")]
    pub changed_fields: String,
    /// The entity after the change, as the domain serialises it.
    #[sea_orm(column_type = "JsonBinary")]
    pub snapshot: Json,
    pub actor: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
