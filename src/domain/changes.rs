//! The delta feed: a tenant's events after a cursor, in `seq` order and never past the
//! settled horizon, so a client that applies them in order keeps an exact replica
//! (S(t+1) = S(t) + ΔS(t)) without downloading everything again.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use entity::events;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};

use super::{Error, Result, Store, Tenant};
use crate::events::Event;

pub const MAX_PAGE: u64 = 500;

/// A page of the feed.
pub struct ChangePage {
    pub events: Vec<Event>,
    /// Pass as `after` to continue; present even when the page is empty.
    pub end_cursor: String,
    pub has_more: bool,
}

pub fn encode_cursor(seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("seq:{seq}"))
}

fn decode_cursor(raw: &str) -> Result<i64> {
    let bad = || Error::BadArgument("`after` is not a cursor of the changes feed".into());
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix("seq:")
        .and_then(|n| n.parse().ok())
        .filter(|n| (0..i64::MAX).contains(n))
        .ok_or_else(bad)
}

/// `entities` names the entity kinds wanted (`customer`, `activity`).
pub async fn list(
    t: &Tenant,
    after: Option<&str>,
    first: u64,
    entities: &[&'static str],
) -> Result<ChangePage> {
    let after = match after {
        Some(raw) => decode_cursor(raw)?,
        None => 0,
    };
    if first > MAX_PAGE {
        return Err(Error::BadArgument(format!(
            "`first` must be at most {MAX_PAGE}"
        )));
    }
    let store = t.store();
    if after > 0 && cursor_expired(store, after).await? {
        return Err(Error::BadArgument(
            "the cursor is older than the event retention: resync from the lists, then follow the feed from a fresh cursor"
                .into(),
        ));
    }
    let horizon = store.events.horizon();
    let rows = t
        .find::<events::Entity>()
        .filter(events::Column::Seq.gt(after))
        .filter(events::Column::Seq.lte(horizon))
        .filter(events::Column::Entity.is_in(entities.iter().copied()))
        .order_by_asc(events::Column::Seq)
        .limit(first + 1)
        .all(t.db())
        .await?;
    let has_more = rows.len() as u64 > first;
    let events: Vec<Event> = rows
        .into_iter()
        .take(first as usize)
        .map(|row| {
            Event::try_from(row).map_err(|err| {
                tracing::error!(seq = err.seq, error = %err, "an event cannot be decoded");
                Error::Internal(Box::new(err))
            })
        })
        .collect::<Result<_>>()?;
    // With nothing new, the cursor moves to the horizon: the events skipped belong to other
    // tenants or entities, and need not be scanned again.
    let end = if has_more {
        events.last().map(|e| e.seq).unwrap_or(after)
    } else {
        horizon.max(after)
    };
    Ok(ChangePage {
        events,
        end_cursor: encode_cursor(end),
        has_more,
    })
}

/// Whether events after `after` were pruned by retention, so a cursor from before then
/// cannot be continued exactly. Only a resumed feed asks, never a fresh one.
async fn cursor_expired(store: &Store, after: i64) -> Result<bool> {
    // Retention prunes by age across tenants: the log's oldest event says what is gone.
    let every = store.cross_tenant();
    let oldest: Option<i64> = every
        .find_in_every_tenant::<events::Entity>()
        .select_only()
        .column_as(events::Column::Seq.min(), "min")
        .into_tuple::<Option<i64>>()
        .one(every.conn())
        .await?
        .flatten();
    Ok(oldest.is_some_and(|oldest| after.saturating_add(1) < oldest))
}
