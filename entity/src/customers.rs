use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "customers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub company: Option<String>,
    /// One of LEAD, PROSPECT, CUSTOMER, CHURNED.
    pub lifecycle_stage: String,
    pub owner_id: Option<String>,
    /// A JSON array of strings, kept as text so that both backends can match a tag with LIKE.
    #[sea_orm(column_type = "Text")]
    pub tags: String,
    #[sea_orm(column_type = "JsonBinary")]
    pub custom_fields: Json,
    pub version: i32,
    /// Denormalised from activities so that customers can be ordered by it with an index.
    pub last_activity_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
