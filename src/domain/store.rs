use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use sea_orm::DatabaseConnection;

/// The database handle and the small process-local caches the domain keeps beside it.
#[derive(Clone)]
pub struct Store {
    pub db: DatabaseConnection,
    /// (org, subject) -> user id. Users are never deleted, so a hit never goes stale and
    /// writes after the first skip the user upsert.
    pub(crate) known_users: Arc<RwLock<HashMap<(String, String), String>>>,
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            known_users: Arc::default(),
        }
    }
}
