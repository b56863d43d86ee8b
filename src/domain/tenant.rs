//! The tenant boundary. A `Tenant` is made only from an authenticated principal, and it is
//! the only way domain code reaches a tenant table: every select, update and delete it builds
//! is filtered on the tenant's `org_id`, and every insert is stamped with it. A test
//! (`tests/api/scoping.rs`) fails when a query on a tenant table is built anywhere else, so
//! isolation holds by construction rather than by each query remembering its filter.

use entity::{
    activities, api_clients, customer_external_ids, customers, events, idempotency_keys,
    inbound_messages, persisted_documents, social_connections, social_profiles, usage_daily, users,
    webhook_attempts, webhook_deliveries, webhook_endpoints,
};
use sea_orm::{
    ActiveModelBehavior, ActiveModelTrait, ColumnTrait, DatabaseConnection, DeleteMany,
    EntityTrait, IntoActiveModel, QueryFilter, Select, UpdateMany, Value,
};

use super::Store;
use crate::auth::Principal;

/// The tenant an authenticated caller belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OrgId(String);

impl OrgId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OrgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table whose rows each belong to one tenant.
pub trait TenantTable: EntityTrait {
    fn org_column() -> Self::Column;
}

macro_rules! tenant_tables {
    ($($table:ident),* $(,)?) => {
        $(impl TenantTable for $table::Entity {
            fn org_column() -> Self::Column {
                $table::Column::OrgId
            }
        })*
    };
}

tenant_tables!(
    customers,
    activities,
    users,
    customer_external_ids,
    social_profiles,
    api_clients,
    events,
    usage_daily,
    persisted_documents,
    webhook_endpoints,
    webhook_deliveries,
    webhook_attempts,
    idempotency_keys,
    social_connections,
    inbound_messages
);

/// One authenticated caller's view of the store: its tenant's rows, nothing else.
#[derive(Clone)]
pub struct Tenant {
    store: Store,
    who: Principal,
    org: OrgId,
}

impl Store {
    /// The tenant of an authenticated principal.
    pub fn tenant(&self, who: &Principal) -> Tenant {
        Tenant {
            store: self.clone(),
            who: who.clone(),
            org: OrgId(who.org.clone()),
        }
    }
}

impl Tenant {
    pub fn org(&self) -> &OrgId {
        &self.org
    }

    /// Who acts: the author of writes, recorded in events.
    pub fn who(&self) -> &Principal {
        &self.who
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The connection queries built here run on.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        self.store.db()
    }

    /// The tenant's rows of `E`.
    pub fn find<E: TenantTable>(&self) -> Select<E> {
        E::find().filter(E::org_column().eq(self.org.as_str()))
    }

    /// Deletes among the tenant's rows of `E` (add the filter of which).
    pub fn delete<E: TenantTable>(&self) -> DeleteMany<E> {
        E::delete_many().filter(E::org_column().eq(self.org.as_str()))
    }

    /// Updates among the tenant's rows of `E` (add what and which).
    pub fn update<E: TenantTable>(&self) -> UpdateMany<E> {
        E::update_many().filter(E::org_column().eq(self.org.as_str()))
    }

    /// A new row of `E`, stamped with the tenant.
    pub fn stamp<E, A>(&self, mut row: A) -> A
    where
        E: TenantTable,
        A: ActiveModelTrait<Entity = E> + ActiveModelBehavior + Send,
        E::Model: IntoActiveModel<A>,
    {
        row.set(E::org_column(), Value::from(self.org.as_str()));
        row
    }
}

/// The few reads that must cross tenants: authenticating an API client by its id, checking
/// and following revocations, and the event log's own retention. Named apart, so that every
/// other query is one tenant's, and the scoping check can tell them from a mistake.
pub struct CrossTenant<'c, C> {
    conn: &'c C,
}

impl Store {
    pub fn cross_tenant(&self) -> CrossTenant<'_, DatabaseConnection> {
        CrossTenant { conn: self.db() }
    }
}

impl<'c, C: sea_orm::ConnectionTrait> CrossTenant<'c, C> {
    /// On another connection (a background pool).
    pub fn on(conn: &'c C) -> Self {
        Self { conn }
    }

    pub fn conn(&self) -> &'c C {
        self.conn
    }

    /// Rows of `E` in every tenant.
    pub fn find_in_every_tenant<E: TenantTable>(&self) -> Select<E> {
        E::find()
    }

    /// Deletes among the rows of `E` in every tenant (retention; add the filter of which).
    pub fn delete_in_every_tenant<E: TenantTable>(&self) -> DeleteMany<E> {
        E::delete_many()
    }
}
