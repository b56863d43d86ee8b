use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, RwLock};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, TransactionTrait};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::events::EventHub;

/// The database handle and the small process-local state the domain keeps beside it.
#[derive(Clone)]
pub struct Store {
    /// Private: domain code reaches tenant tables through a `Tenant`, and the few
    /// cross-tenant readers through `CrossTenant`.
    db: DatabaseConnection,
    /// (org, subject) -> user id. Users are never deleted, so a hit never goes stale and
    /// writes after the first skip the user upsert.
    pub(crate) known_users: Arc<RwLock<HashMap<(String, String), String>>>,
    /// SQLite allows one writer at a time, and two deferred transactions that both read and
    /// then write fail at once with "database is locked" rather than wait. Writers queue here
    /// instead. PostgreSQL needs no such queue: rows are locked where they are read.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// Woken after each write so live consumers see it at once.
    pub events: EventHub,
}

/// A write transaction, holding the SQLite writer slot until it ends.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _slot: Option<OwnedMutexGuard<()>>,
    /// Users this transaction created, remembered only once it commits: a user row that
    /// rolled back must not be taken for an existing one.
    pub(crate) new_users: std::sync::Mutex<Vec<((String, String), String)>>,
}

impl Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Store {
    pub fn new(db: DatabaseConnection) -> Self {
        Self::with_events(db, EventHub::new(1024))
    }

    pub fn with_events(db: DatabaseConnection, events: EventHub) -> Self {
        let sqlite_writer = (db.get_database_backend() == DbBackend::Sqlite).then(Arc::default);
        Self {
            db,
            known_users: Arc::default(),
            sqlite_writer,
            events,
        }
    }

    /// The same store on another pool (background work, counted apart), sharing the SQLite
    /// writer slot and the event hub.
    pub fn on_pool(&self, db: DatabaseConnection) -> Self {
        Self {
            db,
            known_users: self.known_users.clone(),
            sqlite_writer: self.sqlite_writer.clone(),
            events: self.events.clone(),
        }
    }

    pub(super) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Whether the database answers (for readiness).
    pub async fn ping(&self) -> Result<(), DbErr> {
        use sea_orm::ConnectionTrait;
        self.db.execute_unprepared("SELECT 1").await.map(|_| ())
    }

    /// Commits a write and wakes the event tailer.
    pub async fn commit(&self, txn: WriteTxn) -> Result<(), DbErr> {
        let new_users = std::mem::take(
            &mut *txn
                .new_users
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        txn.commit().await?;
        if !new_users.is_empty()
            && let Ok(mut known) = self.known_users.write()
        {
            known.extend(new_users);
        }
        self.events.written();
        Ok(())
    }

    /// Begins a transaction that will write.
    pub async fn write(&self) -> Result<WriteTxn, DbErr> {
        let slot = match &self.sqlite_writer {
            Some(writer) => Some(writer.clone().lock_owned().await),
            None => None,
        };
        // On SQLite the write lock is taken at `BEGIN IMMEDIATE`, where the busy timeout
        // applies: a deferred transaction that read first and then writes after another
        // process committed (`crm import` beside a server) fails at once with
        // SQLITE_BUSY_SNAPSHOT, whatever the timeout.
        let options = sea_orm::TransactionOptions {
            sqlite_transaction_mode: self
                .sqlite_writer
                .is_some()
                .then_some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        Ok(WriteTxn {
            txn: self.db.begin_with_options(options).await?,
            _slot: slot,
            new_users: Default::default(),
        })
    }
}
