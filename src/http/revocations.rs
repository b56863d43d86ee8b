//! Revocation reaches open WebSockets: a token is checked when a connection starts, and a
//! connection lives on past that check, so each instance looks for recent revocations (made
//! on any instance) every few seconds and tells the connections, which close with 4403 when
//! theirs is among them.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;

use crate::domain::clients::{self, Revoked};

/// How often revocations are looked for: the most a revoked token's socket stays open.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// How far back each look reaches: far more than a poll interval, so a revocation whose
/// transaction commits late, or a poll that failed, is still seen.
const LOOKBACK: chrono::Duration = chrono::Duration::seconds(60);

#[derive(Clone)]
pub struct RevocationWatch {
    tx: broadcast::Sender<Arc<Revoked>>,
}

impl RevocationWatch {
    /// Starts looking on `db` (a background pool).
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, _) = broadcast::channel(16);
        let sender = tx.clone();
        tokio::spawn(async move {
            let mut last = Revoked::default();
            loop {
                tokio::time::sleep(POLL_EVERY).await;
                // No open socket, nothing to close: the database is not asked.
                if sender.receiver_count() == 0 {
                    continue;
                }
                let since = chrono::Utc::now() - LOOKBACK;
                match clients::revoked_since(&db, since).await {
                    // Only news wakes the connections.
                    Ok(recent) if !recent.is_empty() && recent != last => {
                        last = recent.clone();
                        let _ = sender.send(Arc::new(recent));
                    }
                    Ok(recent) => last = recent,
                    Err(err) => tracing::warn!(error = %err, "looking for revocations failed"),
                }
            }
        });
        Self { tx }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Revoked>> {
        self.tx.subscribe()
    }
}
