//! Organizations, users, customers and what hangs off them, activities, and the event log.
//!
//! Every tenant row carries `org_id`, and every list index leads with it, so that a
//! tenant's keyset page is one index range scan whatever the other tenants hold.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrgId,
    Subject,
    Name,
    Email,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Customers {
    Table,
    Id,
    OrgId,
    Name,
    Email,
    Phone,
    Company,
    LifecycleStage,
    OwnerId,
    Tags,
    CustomFields,
    Version,
    LastActivityAt,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum CustomerExternalIds {
    Table,
    Id,
    OrgId,
    CustomerId,
    Source,
    ExternalId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum SocialProfiles {
    Table,
    Id,
    OrgId,
    CustomerId,
    Network,
    Handle,
    NetworkUserId,
    Url,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Activities {
    Table,
    Id,
    OrgId,
    CustomerId,
    Kind,
    Subject,
    Body,
    OccurredAt,
    DueAt,
    CompletedAt,
    AuthorId,
    Source,
    ExternalId,
    Version,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Seq,
    OrgId,
    Entity,
    EntityId,
    Op,
    ChangedFields,
    Snapshot,
    Actor,
    CreatedAt,
}

/// Ids are short prefixed ULIDs (`cus_01J…`), well under this bound.
const ID_LEN: u32 = 40;

fn id_pk<T: IntoIden>(col: T) -> ColumnDef {
    string_len(col, ID_LEN).primary_key().take()
}

fn id_ref<T: IntoIden>(col: T) -> ColumnDef {
    string_len(col, ID_LEN)
}

fn id_ref_null<T: IntoIden>(col: T) -> ColumnDef {
    string_len_null(col, ID_LEN)
}

/// Tenant ids come from the token's `org` claim, so they are bounded but not prefixed.
fn org_ref<T: IntoIden>(col: T) -> ColumnDef {
    string_len(col, 64)
}

fn index(name: &str, table: impl IntoIden, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    stmt.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(string_len(Organizations::Id, 64).primary_key())
                    .col(string_len(Organizations::Name, 200))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(id_pk(Users::Id))
                    .col(org_ref(Users::OrgId))
                    .col(string_len(Users::Subject, 255))
                    .col(string_len_null(Users::Name, 200))
                    .col(string_len_null(Users::Email, 320))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("ux_users_org_subject", Users::Table, &["org_id", "subject"])
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Customers::Table)
                    .col(id_pk(Customers::Id))
                    .col(org_ref(Customers::OrgId))
                    .col(string_len(Customers::Name, 200))
                    .col(string_len_null(Customers::Email, 320))
                    .col(string_len_null(Customers::Phone, 40))
                    .col(string_len_null(Customers::Company, 200))
                    .col(string_len(Customers::LifecycleStage, 16))
                    .col(id_ref_null(Customers::OwnerId))
                    .col(text(Customers::Tags))
                    .col(json_binary(Customers::CustomFields))
                    .col(integer(Customers::Version))
                    .col(timestamp_with_time_zone_null(Customers::LastActivityAt))
                    .col(timestamp_with_time_zone(Customers::CreatedAt))
                    .col(timestamp_with_time_zone(Customers::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Customers::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customers_owner")
                            .from(Customers::Table, Customers::OwnerId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_customers_org_created",
                &["org_id", "created_at", "id"][..],
            ),
            (
                "ix_customers_org_updated",
                &["org_id", "updated_at", "id"][..],
            ),
            ("ix_customers_org_name", &["org_id", "name", "id"][..]),
            (
                "ix_customers_org_last_activity",
                &["org_id", "last_activity_at", "id"][..],
            ),
            ("ix_customers_org_email", &["org_id", "email"][..]),
            ("ix_customers_owner", &["owner_id"][..]),
        ] {
            manager
                .create_index(index(name, Customers::Table, cols))
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(CustomerExternalIds::Table)
                    .col(id_pk(CustomerExternalIds::Id))
                    .col(org_ref(CustomerExternalIds::OrgId))
                    .col(id_ref(CustomerExternalIds::CustomerId))
                    .col(string_len(CustomerExternalIds::Source, 64))
                    .col(string_len(CustomerExternalIds::ExternalId, 255))
                    .col(timestamp_with_time_zone(CustomerExternalIds::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_customer_external_ids_customer")
                            .from(CustomerExternalIds::Table, CustomerExternalIds::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "ux_customer_external_ids_key",
                    CustomerExternalIds::Table,
                    &["org_id", "source", "external_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_customer_external_ids_customer",
                CustomerExternalIds::Table,
                &["customer_id"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SocialProfiles::Table)
                    .col(id_pk(SocialProfiles::Id))
                    .col(org_ref(SocialProfiles::OrgId))
                    .col(id_ref(SocialProfiles::CustomerId))
                    .col(string_len(SocialProfiles::Network, 32))
                    .col(string_len(SocialProfiles::Handle, 255))
                    .col(string_len_null(SocialProfiles::NetworkUserId, 255))
                    .col(string_len_null(SocialProfiles::Url, 2048))
                    .col(timestamp_with_time_zone(SocialProfiles::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_social_profiles_customer")
                            .from(SocialProfiles::Table, SocialProfiles::CustomerId)
                            .to(Customers::Table, Customers::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_social_profiles_customer",
                SocialProfiles::Table,
                &["customer_id"],
            ))
            .await?;
        manager
            .create_index(
                index(
                    "ux_social_profiles_network_user",
                    SocialProfiles::Table,
                    &["org_id", "network", "network_user_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Activities::Table)
                    .col(id_pk(Activities::Id))
                    .col(org_ref(Activities::OrgId))
                    .col(id_ref(Activities::CustomerId))
                    .col(string_len(Activities::Kind, 16))
                    .col(string_len(Activities::Subject, 500))
                    .col(text_null(Activities::Body))
                    .col(timestamp_with_time_zone(Activities::OccurredAt))
                    .col(timestamp_with_time_zone_null(Activities::DueAt))
                    .col(timestamp_with_time_zone_null(Activities::CompletedAt))
                    .col(id_ref_null(Activities::AuthorId))
                    .col(string_len_null(Activities::Source, 64))
                    .col(string_len_null(Activities::ExternalId, 255))
                    .col(integer(Activities::Version))
                    .col(timestamp_with_time_zone(Activities::CreatedAt))
                    .col(timestamp_with_time_zone(Activities::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Activities::DeletedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_customer")
                            .from(Activities::Table, Activities::CustomerId)
                            .to(Customers::Table, Customers::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_activities_author")
                            .from(Activities::Table, Activities::AuthorId)
                            .to(Users::Table, Users::Id),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "ix_activities_customer_occurred",
                &["org_id", "customer_id", "occurred_at", "id"][..],
            ),
            (
                "ix_activities_org_occurred",
                &["org_id", "occurred_at", "id"][..],
            ),
            (
                "ix_activities_org_created",
                &["org_id", "created_at", "id"][..],
            ),
            (
                "ix_activities_org_updated",
                &["org_id", "updated_at", "id"][..],
            ),
            ("ix_activities_author", &["author_id"][..]),
        ] {
            manager
                .create_index(index(name, Activities::Table, cols))
                .await?;
        }
        manager
            .create_index(
                index(
                    "ux_activities_external",
                    Activities::Table,
                    &["org_id", "source", "external_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(big_pk_auto(Events::Seq))
                    .col(org_ref(Events::OrgId))
                    .col(string_len(Events::Entity, 32))
                    .col(id_ref(Events::EntityId))
                    .col(string_len(Events::Op, 16))
                    .col(text(Events::ChangedFields))
                    .col(json_binary(Events::Snapshot))
                    .col(string_len_null(Events::Actor, 255))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "ix_events_org_seq",
                Events::Table,
                &["org_id", "seq"],
            ))
            .await?;
        manager
            .create_index(index(
                "ix_events_entity",
                Events::Table,
                &["entity", "entity_id"],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            Activities::Table.into_iden(),
            SocialProfiles::Table.into_iden(),
            CustomerExternalIds::Table.into_iden(),
            Customers::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
