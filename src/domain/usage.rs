//! Usage metering: per tenant, caller and day (UTC), how many operations ran, what they
//! cost, how many ended in errors and how many were refused (rate limits). Counted in
//! memory by the edge and added here in batches, so metering costs no write per request.

use std::collections::HashMap;

use chrono::NaiveDate;
use entity::usage_daily;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::{Result, Store, Tenant};

/// Whose usage: a tenant's caller on a day.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UsageKey {
    pub org: String,
    /// `client:<id>` for an API client's tokens, `user:<subject>` for anyone else's.
    pub caller: String,
    pub day: NaiveDate,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: i64,
    pub cost: i64,
    pub errors: i64,
    pub rejections: i64,
}

impl Counts {
    pub fn add(&mut self, other: Counts) {
        self.requests = self.requests.saturating_add(other.requests);
        self.cost = self.cost.saturating_add(other.cost);
        self.errors = self.errors.saturating_add(other.errors);
        self.rejections = self.rejections.saturating_add(other.rejections);
    }
}

/// One row of the `usage` query.
#[derive(Clone, Debug)]
pub struct UsageDay {
    pub day: NaiveDate,
    pub caller: String,
    pub counts: Counts,
}

impl Store {
    /// Adds counts to what is stored. One statement per row; rows of several tenants go
    /// together (this is metering's own bookkeeping, not a tenant's read).
    pub async fn add_usage(&self, counts: &HashMap<UsageKey, Counts>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let txn = self.write().await?;
        for (key, add) in counts {
            let row = usage_daily::ActiveModel {
                org_id: Set(key.org.clone()),
                day: Set(key.day),
                caller: Set(key.caller.clone()),
                requests: Set(add.requests),
                cost: Set(add.cost),
                errors: Set(add.errors),
                rejections: Set(add.rejections),
            };
            let mut upsert = OnConflict::columns([
                usage_daily::Column::OrgId,
                usage_daily::Column::Day,
                usage_daily::Column::Caller,
            ]);
            for column in [
                usage_daily::Column::Requests,
                usage_daily::Column::Cost,
                usage_daily::Column::Errors,
                usage_daily::Column::Rejections,
            ] {
                upsert.value(
                    column,
                    Expr::col((usage_daily::Entity, column))
                        .add(Expr::col((Alias::new("excluded"), column))),
                );
            }
            usage_daily::Entity::insert(row)
                .on_conflict(upsert)
                .exec_without_returning(&*txn)
                .await?;
        }
        // Not `Store::commit`: usage is not an event, so the tailer need not wake.
        txn.commit().await?;
        Ok(())
    }
}

impl Tenant {
    /// The tenant's usage from `from` to `to` (inclusive), of one caller or all, by day.
    pub async fn usage(
        &self,
        from: NaiveDate,
        to: NaiveDate,
        caller: Option<&str>,
    ) -> Result<Vec<UsageDay>> {
        let mut query = self
            .find::<usage_daily::Entity>()
            .filter(usage_daily::Column::Day.between(from, to));
        if let Some(caller) = caller {
            query = query.filter(usage_daily::Column::Caller.eq(caller));
        }
        let rows = query
            .order_by_asc(usage_daily::Column::Day)
            .order_by_asc(usage_daily::Column::Caller)
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| UsageDay {
                day: row.day,
                caller: row.caller,
                counts: Counts {
                    requests: row.requests,
                    cost: row.cost,
                    errors: row.errors,
                    rejections: row.rejections,
                },
            })
            .collect())
    }
}

/// Counts kept in memory between flushes. Cheap to record (one short lock); several
/// instances each add what they counted, so the stored figures are the sum of all.
#[derive(Clone)]
pub struct Meter {
    store: Store,
    pending: std::sync::Arc<std::sync::Mutex<HashMap<UsageKey, Counts>>>,
    /// One flush at a time: a reader that flushes first waits for a flush under way (the
    /// periodic one), so it sees what that one took, not a table it has yet to write to.
    flushing: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Meter {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            pending: Default::default(),
            flushing: Default::default(),
        }
    }

    pub fn record(&self, org: &str, caller: &str, counts: Counts) {
        let key = UsageKey {
            org: org.to_owned(),
            caller: caller.to_owned(),
            day: chrono::Utc::now().date_naive(),
        };
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key)
            .or_default()
            .add(counts);
    }

    /// Writes what was counted since the last flush. What fails to be written is counted
    /// again, to be written next time.
    pub async fn flush(&self) -> Result<()> {
        let _one_at_a_time = self.flushing.lock().await;
        let taken = std::mem::take(
            &mut *self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        if let Err(err) = self.store.add_usage(&taken).await {
            let mut pending = self
                .pending
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, counts) in taken {
                pending.entry(key).or_default().add(counts);
            }
            return Err(err);
        }
        Ok(())
    }

    /// Flushes every `every` until the process ends.
    pub fn spawn_flusher(&self, every: std::time::Duration) {
        let meter = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(err) = meter.flush().await {
                    tracing::warn!(error = %err, "writing usage counts failed; kept for the next flush");
                }
            }
        });
    }
}
