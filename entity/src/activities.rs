use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "activities")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    /// One of CALL, EMAIL, MEETING, NOTE, TASK, SOCIAL_MESSAGE.
    pub kind: String,
    pub subject: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub body: Option<String>,
    pub occurred_at: DateTimeUtc,
    pub due_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub author_id: Option<String>,
    pub source: Option<String>,
    pub external_id: Option<String>,
    pub version: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
