//! Tailing the event log for live consumers. One tailer per process reads new rows in `seq`
//! order and fans them out on a bounded broadcast channel.
//!
//! The log is the source of truth; wake-ups only say "look now". Writers in this process
//! wake the tailer directly; on PostgreSQL every write also sends `NOTIFY crm_events`
//! (delivered at commit), so writes on other instances wake it too; and a slow periodic poll
//! covers a lost notification.
//!
//! Never skipping an event: on PostgreSQL two transactions can commit out of `seq` order, so
//! the tailer delivers only the contiguous prefix after its cursor. A missing `seq` is either
//! a transaction still in flight or one that rolled back; the tailer waits for it up to
//! `gap_timeout` (far longer than any write transaction) before treating it as rolled back.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::events;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use tokio::sync::{Notify, broadcast};

use super::{EntityKind, Op};

/// A committed change, as consumers receive it.
#[derive(Clone, Debug)]
pub struct Event {
    pub seq: i64,
    pub org_id: String,
    pub entity: EntityKind,
    pub entity_id: String,
    pub op: Op,
    pub changed_fields: Vec<String>,
    pub snapshot: Value,
    pub created_at: DateTime<Utc>,
}

/// A stored event this build cannot read: logged with its `seq` by whoever meets it, and
/// never passed over in silence.
#[derive(Debug, thiserror::Error)]
#[error("event {seq} cannot be read: {why}")]
pub struct DecodeError {
    pub seq: i64,
    pub why: String,
}

impl TryFrom<events::Model> for Event {
    type Error = DecodeError;

    fn try_from(m: events::Model) -> Result<Self, DecodeError> {
        let seq = m.seq;
        let fail = |why: String| DecodeError { seq, why };
        Ok(Self {
            changed_fields: serde_json::from_str(&m.changed_fields)
                .map_err(|e| fail(format!("changed fields: {e}")))?,
            entity: m
                .entity
                .parse()
                .map_err(|_| fail(format!("unknown entity {:?}", m.entity)))?,
            op: m
                .op
                .parse()
                .map_err(|_| fail(format!("unknown op {:?}", m.op)))?,
            seq,
            org_id: m.org_id,
            entity_id: m.entity_id,
            snapshot: m.snapshot,
            created_at: m.created_at,
        })
    }
}

pub const CHANNEL: &str = "crm_events";
const BATCH: u64 = 500;

/// The process's connection to the log's live end.
#[derive(Clone)]
pub struct EventHub {
    wake: Arc<Notify>,
    sender: broadcast::Sender<Arc<Event>>,
    /// Every event with a `seq` up to here is settled (committed or rolled back): readers of
    /// the log never go past it, so they never skip an event that commits late.
    horizon: Arc<AtomicI64>,
}

impl EventHub {
    /// `capacity` bounds how far a slow subscriber may fall behind before it is dropped.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(16));
        Self {
            wake: Arc::new(Notify::new()),
            sender,
            horizon: Arc::new(AtomicI64::new(0)),
        }
    }

    /// Tells the tailer new rows were committed.
    pub fn written(&self) {
        self.wake.notify_one();
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }

    /// The highest `seq` below which the log has no gap that may still fill.
    pub fn horizon(&self) -> i64 {
        self.horizon.load(Ordering::Acquire)
    }

    /// Starts the tailer from the current end of the log (live consumers see what happens
    /// from now on), and on PostgreSQL the listener for other instances' writes.
    pub async fn start(
        &self,
        db: DatabaseConnection,
        gap_timeout: Duration,
    ) -> Result<(), sea_orm::DbErr> {
        let cursor = events::Entity::find()
            .select_only()
            .column_as(events::Column::Seq.max(), "max")
            .into_tuple::<Option<i64>>()
            .one(&db)
            .await?
            .flatten()
            .unwrap_or(0);
        if db.get_database_backend() == DbBackend::Postgres {
            self.listen(&db).await;
        }
        self.horizon.store(cursor, Ordering::Release);
        let hub = self.clone();
        tokio::spawn(async move { hub.tail(db, cursor, gap_timeout).await });
        Ok(())
    }

    async fn listen(&self, db: &DatabaseConnection) {
        let pool = db.get_postgres_connection_pool().clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            loop {
                match sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(mut listener) => {
                        if let Err(err) = listener.listen(CHANNEL).await {
                            tracing::warn!(error = %err, "LISTEN failed");
                        } else {
                            while listener.recv().await.is_ok() {
                                wake.notify_one();
                            }
                        }
                    }
                    Err(err) => tracing::warn!(error = %err, "cannot open the LISTEN connection"),
                }
                // Reconnect after a pause; the periodic poll covers the outage.
                tokio::time::sleep(Duration::from_secs(1)).await;
                wake.notify_one();
            }
        });
    }

    async fn tail(self, db: DatabaseConnection, mut cursor: i64, gap_timeout: Duration) {
        let mut gap_since: Option<Instant> = None;
        loop {
            let rows = events::Entity::find()
                .filter(events::Column::Seq.gt(cursor))
                .order_by_asc(events::Column::Seq)
                .limit(BATCH)
                .all(&db)
                .await;
            let mut more = false;
            match rows {
                Ok(rows) => {
                    more = rows.len() as u64 == BATCH;
                    for row in rows {
                        if row.seq != cursor + 1 {
                            let since = *gap_since.get_or_insert_with(Instant::now);
                            if since.elapsed() < gap_timeout {
                                // Wait for the missing seq: it may still commit.
                                more = false;
                                break;
                            }
                            tracing::debug!(
                                from = cursor + 1,
                                to = row.seq - 1,
                                "event seq gap treated as rolled back"
                            );
                        }
                        gap_since = None;
                        cursor = row.seq;
                        self.horizon.store(cursor, Ordering::Release);
                        // No receivers is fine: nobody is listening right now.
                        match Event::try_from(row) {
                            Ok(event) => {
                                let _ = self.sender.send(Arc::new(event));
                            }
                            // Live consumers cannot be given what cannot be read; the
                            // `changes` feed refuses to page past it.
                            Err(err) => {
                                tracing::error!(seq = err.seq, error = %err, "an event cannot be decoded")
                            }
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "reading the event log failed"),
            }
            if more {
                continue;
            }
            let pause = if gap_since.is_some() {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(500)
            };
            let _ = tokio::time::timeout(pause, self.wake.notified()).await;
        }
    }
}
