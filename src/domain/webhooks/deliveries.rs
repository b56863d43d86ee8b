//! The delivery machinery's bookkeeping, across tenants: events become deliveries (one per
//! matching endpoint, in the transaction that moves the dispatch cursor, so none is lost or
//! made twice), workers claim due deliveries under a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so instances never claim the same one; a worker that dies lets its lease
//! lapse), and each attempt is recorded with what comes next.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{events, webhook_attempts, webhook_deliveries, webhook_dispatch, webhook_endpoints};
use sea_orm::sea_query::{Expr, OnConflict, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, Statement,
};
use serde_json::{Map, Value};

use super::signing;
use crate::auth::Scope;
use crate::domain::ids::{IdKind, new_id};
use crate::domain::{Result, Store};
use crate::events::{EntityKind, Event, Op};

pub const PENDING: &str = "PENDING";
pub const DELIVERED: &str = "DELIVERED";
pub const FAILED: &str = "FAILED";

const CURSOR: &str = "outbox";

/// A new pending delivery (its tenant stamps it).
pub fn new_row(
    endpoint_id: &str,
    event_seq: Option<i64>,
    event_type: &str,
    payload: String,
    at: DateTime<Utc>,
) -> webhook_deliveries::ActiveModel {
    webhook_deliveries::ActiveModel {
        id: Set(new_id(IdKind::WebhookMessage)),
        org_id: Set(String::new()),
        endpoint_id: Set(endpoint_id.to_owned()),
        event_seq: Set(event_seq),
        event_type: Set(event_type.to_owned()),
        payload: Set(payload),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(Some(at)),
        lease_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        last_latency_ms: Set(None),
        created_at: Set(at),
        delivered_at: Set(None),
    }
}

/// The event type of an event, as the body's `type` names it.
pub fn event_type(entity: EntityKind, op: Op) -> &'static str {
    match (entity, op) {
        (EntityKind::Customer, Op::Created) => "customer.created",
        (EntityKind::Customer, Op::Updated) => "customer.updated",
        (EntityKind::Customer, Op::Deleted) => "customer.deleted",
        (EntityKind::Customer, Op::Restored) => "customer.restored",
        (EntityKind::Activity, Op::Created) => "activity.logged",
        (EntityKind::Activity, Op::Updated | Op::Restored) => "activity.updated",
        (EntityKind::Activity, Op::Deleted) => "activity.deleted",
    }
}

/// The entity as the API shows it to someone with `scopes`: GraphQL field names, related
/// objects as `{id}`, personal data only with `pii:read`, an activity's customer only with
/// `customers:read`.
pub fn data(event: &Event, scopes: &str) -> Value {
    let has = |scope: Scope| scopes.split(' ').any(|s| s == scope.as_str());
    let (pii, customers) = (has(Scope::PiiRead), has(Scope::CustomersRead));
    let names: crate::events::FieldNames = match event.entity {
        EntityKind::Customer => crate::domain::customers::Customer::field_name,
        EntityKind::Activity => crate::domain::activities::Activity::field_name,
    };
    let mut out = Map::new();
    for (key, value) in event.snapshot.as_object().into_iter().flatten() {
        if key == "snapshotVersion" {
            continue;
        }
        let Some(name) = names(key) else { continue };
        // The fields the schema guards with a scope of their own (`@requiresScopes`).
        let guarded = match (event.entity, name) {
            (EntityKind::Customer, "email" | "phone") => !pii,
            (EntityKind::Activity, "customer") => !customers,
            _ => false,
        };
        if guarded {
            continue;
        }
        let value = if name != key && key.ends_with("Id") {
            // A relation (`ownerId` → `owner`): the related object, by id.
            match value {
                Value::Null => Value::Null,
                id => serde_json::json!({ "id": id }),
            }
        } else {
            value.clone()
        };
        out.insert(name.to_owned(), value);
    }
    Value::Object(out)
}

/// Turns settled events after the cursor into deliveries, at most `batch` events at a time;
/// how many events it looked at. Instances may all run it: the cursor row is locked for the
/// transaction, so each event is dispatched once.
pub async fn dispatch(store: &Store, horizon: i64, batch: u64) -> Result<usize> {
    // Nothing new (the common case): no transaction at all.
    let last_seen = webhook_dispatch::Entity::find_by_id(CURSOR)
        .one(store.db())
        .await?
        .map(|row| row.last_seq);
    if last_seen.is_some_and(|seen| seen >= horizon) {
        return Ok(0);
    }
    let txn = store.write().await?;
    let conn = &*txn;
    let backend = conn.get_database_backend();
    let cursor = if backend == DbBackend::Postgres {
        conn.query_one_raw(Statement::from_sql_and_values(
            backend,
            "SELECT last_seq FROM webhook_dispatch WHERE name = $1 FOR UPDATE",
            [CURSOR.into()],
        ))
        .await?
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
    } else {
        webhook_dispatch::Entity::find_by_id(CURSOR)
            .one(conn)
            .await?
            .map(|row| row.last_seq)
    };
    // The migration made the cursor; should it be gone, dispatch starts from the beginning
    // of the log (endpoints only get events from after their creation anyway).
    let after = match cursor {
        Some(after) => after,
        None => {
            webhook_dispatch::Entity::insert(webhook_dispatch::ActiveModel {
                name: Set(CURSOR.to_owned()),
                last_seq: Set(0),
            })
            .on_conflict(
                OnConflict::column(webhook_dispatch::Column::Name)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
            0
        }
    };
    // Only the events of organizations with an active endpoint are read: no other makes a
    // delivery (a new server on a seeded database read its 200,000 events whole, and held
    // 10 MB more after it).
    let listening = Query::select()
        .column(webhook_endpoints::Column::OrgId)
        .from(webhook_endpoints::Entity)
        .and_where(webhook_endpoints::Column::Active.eq(true))
        .to_owned();
    let rows = events::Entity::find()
        .filter(events::Column::Seq.gt(after))
        .filter(events::Column::Seq.lte(horizon))
        .filter(events::Column::OrgId.in_subquery(listening))
        .order_by_asc(events::Column::Seq)
        .limit(batch)
        .all(conn)
        .await?;
    // A batch that is not full read every such event up to the horizon.
    let full = u64::try_from(rows.len()).is_ok_and(|n| n >= batch);
    let last = match rows.last() {
        Some(row) if full => row.seq,
        // Never back: another instance may have moved the cursor past this horizon.
        _ => horizon.max(after),
    };
    let orgs: Vec<String> = {
        let mut orgs: Vec<String> = rows.iter().map(|row| row.org_id.clone()).collect();
        orgs.sort();
        orgs.dedup();
        orgs
    };
    let mut endpoints: HashMap<String, Vec<webhook_endpoints::Model>> = HashMap::new();
    for endpoint in webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::OrgId.is_in(orgs))
        .filter(webhook_endpoints::Column::Active.eq(true))
        .all(conn)
        .await?
    {
        endpoints
            .entry(endpoint.org_id.clone())
            .or_default()
            .push(endpoint);
    }
    let looked_at = rows.len();
    let mut new = Vec::new();
    for row in rows {
        let Some(listening) = endpoints.get(&row.org_id) else {
            continue;
        };
        let event = match Event::try_from(row) {
            Ok(event) => event,
            Err(err) => {
                // Never skipped in silence; the feed reports it to whoever reads it.
                tracing::error!(seq = err.seq, error = %err, "an event cannot be read; no webhook sent for it");
                continue;
            }
        };
        let ty = event_type(event.entity, event.op);
        for endpoint in listening {
            let wants: Vec<String> =
                serde_json::from_str(&endpoint.event_types).unwrap_or_default();
            if !wants.iter().any(|w| w == ty) || event.seq <= endpoint.after_seq {
                continue;
            }
            let body = serde_json::json!({
                "type": ty,
                "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "data": data(&event, &endpoint.scopes),
            });
            let mut delivery = new_row(
                &endpoint.id,
                Some(event.seq),
                ty,
                body.to_string(),
                crate::domain::now(),
            );
            delivery.org_id = Set(endpoint.org_id.clone());
            new.push(delivery);
        }
    }
    for chunk in new.chunks(200) {
        webhook_deliveries::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    webhook_dispatch::Entity::update_many()
        .col_expr(webhook_dispatch::Column::LastSeq, Expr::value(last))
        .filter(webhook_dispatch::Column::Name.eq(CURSOR))
        .exec(conn)
        .await?;
    txn.commit().await?;
    Ok(looked_at)
}

/// A delivery a worker holds, with what it needs to send it.
#[derive(Clone, Debug)]
pub struct Claimed {
    pub id: String,
    pub org_id: String,
    pub endpoint_id: String,
    pub url: String,
    /// The keys to sign with: the current secret's, and the previous one's during a rotation.
    pub keys: Vec<Vec<u8>>,
    pub payload: String,
    pub attempts: i32,
    pub lease_until: DateTime<Utc>,
}

/// Claims up to `limit` due deliveries until `now + lease`, at most `per_endpoint` in flight
/// for any one endpoint.
pub async fn claim(
    store: &Store,
    now: DateTime<Utc>,
    lease: Duration,
    limit: u64,
    per_endpoint: u64,
) -> Result<Vec<Claimed>> {
    let until = now + lease;
    // A plain read first: an idle worker takes no write lock (on SQLite, writers of other
    // processes, `crm` commands, would otherwise meet it twice a second).
    let due = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::Status.eq(PENDING))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(now))
        .select_only()
        .column(webhook_deliveries::Column::Id)
        .limit(1)
        .into_tuple::<String>()
        .one(store.db())
        .await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let txn = store.write().await?;
    let conn = &*txn;
    let backend = conn.get_database_backend();
    // One writer at a time on SQLite: the transaction is the lock. PostgreSQL skips rows
    // another instance holds.
    // Fair between endpoints: at most `per_endpoint` due deliveries of one endpoint are
    // taken at a time, none of an endpoint that already has that many in flight, so one
    // endpoint that hangs or has a long queue cannot hold every worker slot.
    let (lease_param, now_param, lock) = if backend == DbBackend::Postgres {
        ("$1", "$2", "FOR UPDATE SKIP LOCKED")
    } else {
        // One writer at a time on SQLite: the transaction is the lock.
        ("?1", "?2", "")
    };
    // The ranking looks at the earliest due deliveries only, so a claim costs the same with
    // a long queue as with a short one. The level that locks repeats the due condition:
    // PostgreSQL re-checks it on a row another instance claimed (and committed) meanwhile,
    // which the ranking's snapshot still shows as free.
    let sql = format!(
        "UPDATE webhook_deliveries SET lease_until = {lease_param} WHERE id IN (\
         SELECT id FROM webhook_deliveries WHERE id IN (\
         SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY endpoint_id ORDER BY \
         next_attempt_at) AS place FROM (SELECT id, endpoint_id, next_attempt_at FROM \
         webhook_deliveries WHERE status = 'PENDING' AND next_attempt_at <= {now_param} AND \
         (lease_until IS NULL OR lease_until < {now_param}) ORDER BY next_attempt_at LIMIT \
         {window}) due WHERE endpoint_id NOT IN (SELECT endpoint_id FROM webhook_deliveries \
         WHERE status = 'PENDING' AND lease_until >= {now_param} GROUP BY endpoint_id HAVING \
         count(*) >= {per_endpoint})) ranked WHERE place <= {per_endpoint}) \
         AND status = 'PENDING' AND (lease_until IS NULL OR lease_until < {now_param}) \
         ORDER BY next_attempt_at LIMIT {limit} {lock}) RETURNING id",
        window = (limit * 8).max(256),
    );
    let ids: Vec<String> = conn
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            &sql,
            [until.into(), now.into()],
        ))
        .await?
        .into_iter()
        .filter_map(|row| row.try_get_by_index::<String>(0).ok())
        .collect();
    if ids.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    let deliveries = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::Id.is_in(ids))
        .all(conn)
        .await?;
    let endpoint_ids: Vec<String> = deliveries.iter().map(|d| d.endpoint_id.clone()).collect();
    let endpoints: HashMap<String, webhook_endpoints::Model> = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::Id.is_in(endpoint_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|e| (e.id.clone(), e))
        .collect();
    let mut claimed = Vec::new();
    for delivery in deliveries {
        match endpoints.get(&delivery.endpoint_id).filter(|e| e.active) {
            Some(endpoint) => {
                let mut keys: Vec<Vec<u8>> =
                    signing::key_of(&endpoint.secret).into_iter().collect();
                if let (Some(previous), Some(until)) = (
                    &endpoint.previous_secret,
                    endpoint.previous_secret_expires_at,
                ) && until > now
                {
                    keys.extend(signing::key_of(previous));
                }
                claimed.push(Claimed {
                    id: delivery.id,
                    org_id: delivery.org_id,
                    endpoint_id: delivery.endpoint_id,
                    url: endpoint.url.clone(),
                    keys,
                    payload: delivery.payload,
                    attempts: delivery.attempts,
                    lease_until: until,
                });
            }
            // Its endpoint is gone or disabled: nothing will be sent.
            None => {
                let mut row: webhook_deliveries::ActiveModel = delivery.into();
                row.status = Set(FAILED.to_owned());
                row.lease_until = Set(None);
                row.next_attempt_at = Set(None);
                row.last_error = Set(Some("the endpoint is disabled".into()));
                row.update(conn).await?;
            }
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

/// What one attempt came to.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub status_code: Option<u16>,
    pub latency_ms: i32,
    pub error: Option<String>,
    /// The receiver's `Retry-After`, when it gave one.
    pub retry_after: Option<Duration>,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// When and whether to try again.
pub struct Policy {
    /// The waits before the 2nd, 3rd… attempt; past the last, the delivery fails.
    pub schedule: Vec<Duration>,
    /// An endpoint failing for this long (every attempt) is disabled.
    pub disable_after: Duration,
}

/// Records an attempt of a claimed delivery and what comes next; `jitter` scales the wait
/// before a retry (1.0 for none). A worker whose lease lapsed records nothing (another holds
/// the delivery now).
pub async fn record(
    store: &Store,
    claimed: &Claimed,
    outcome: &Outcome,
    policy: &Policy,
    jitter: f64,
    now: DateTime<Utc>,
) -> Result<()> {
    let txn = store.write().await?;
    let conn = &*txn;
    let Some(current) = webhook_deliveries::Entity::find_by_id(claimed.id.clone())
        .one(conn)
        .await?
        .filter(|d| d.lease_until == Some(claimed.lease_until) && d.status == PENDING)
    else {
        txn.commit().await?;
        return Ok(());
    };
    let number = current.attempts + 1;
    webhook_attempts::ActiveModel {
        delivery_id: Set(current.id.clone()),
        number: Set(number),
        org_id: Set(current.org_id.clone()),
        attempted_at: Set(now),
        status_code: Set(outcome.status_code.map(i32::from)),
        latency_ms: Set(outcome.latency_ms),
        error: Set(outcome.error.clone()),
    }
    .insert(conn)
    .await?;
    let endpoint = webhook_endpoints::Entity::find_by_id(current.endpoint_id.clone())
        .one(conn)
        .await?;
    let mut row: webhook_deliveries::ActiveModel = current.into();
    row.attempts = Set(number);
    row.lease_until = Set(None);
    row.last_status_code = Set(outcome.status_code.map(i32::from));
    row.last_error = Set(outcome.error.clone());
    row.last_latency_ms = Set(Some(outcome.latency_ms));
    let mut disable: Option<String> = None;
    let mut failing_since: Option<Option<DateTime<Utc>>> = None;
    if outcome.delivered() {
        row.status = Set(DELIVERED.to_owned());
        row.delivered_at = Set(Some(now));
        row.next_attempt_at = Set(None);
        failing_since = Some(None);
    } else if outcome.status_code == Some(410) {
        row.status = Set(FAILED.to_owned());
        row.next_attempt_at = Set(None);
        disable = Some("the endpoint answered 410 Gone".into());
    } else {
        let since = endpoint
            .as_ref()
            .and_then(|e| e.failing_since)
            .unwrap_or(now);
        failing_since = Some(Some(since));
        if now - since >= policy.disable_after {
            disable = Some(format!(
                "every delivery failed since {}",
                since.to_rfc3339()
            ));
        }
        match policy
            .schedule
            .get(usize::try_from(number - 1).unwrap_or(usize::MAX))
        {
            Some(wait) if disable.is_none() => {
                let millis = (wait.num_milliseconds() as f64 * jitter).max(0.0) as i64;
                let mut next = now + Duration::milliseconds(millis);
                if let Some(asked) = outcome.retry_after {
                    // Honoured up to a day: a receiver cannot park deliveries for ever.
                    next = next.max(now + asked.min(Duration::days(1)));
                }
                row.next_attempt_at = Set(Some(next));
            }
            _ => {
                row.status = Set(FAILED.to_owned());
                row.next_attempt_at = Set(None);
            }
        }
    }
    row.update(conn).await?;
    // The endpoint is written only when its state moves (not on every delivered attempt).
    let moves = |e: &webhook_endpoints::Model| {
        disable.is_some() || failing_since.is_some_and(|since| since != e.failing_since)
    };
    if let Some(endpoint) = endpoint.filter(moves) {
        let mut e: webhook_endpoints::ActiveModel = endpoint.into();
        if let Some(since) = failing_since {
            e.failing_since = Set(since);
        }
        if let Some(reason) = disable {
            tracing::warn!(endpoint = %claimed.endpoint_id, reason = %reason, "webhook endpoint disabled");
            e.active = Set(false);
            e.disabled_reason = Set(Some(reason));
        }
        e.update(conn).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Forgets deliveries (and their attempts) older than `keep` that are settled, delivered or
/// given up: their payloads hold personal data, kept no longer than the event log keeps it.
pub async fn prune(conn: &impl ConnectionTrait, keep: Duration) -> Result<u64> {
    let cutoff = crate::domain::now() - keep;
    let old = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::Status.ne(PENDING))
        .filter(webhook_deliveries::Column::CreatedAt.lt(cutoff))
        .select_only()
        .column(webhook_deliveries::Column::Id)
        .limit(5_000)
        .into_tuple::<String>()
        .all(conn)
        .await?;
    if old.is_empty() {
        return Ok(0);
    }
    webhook_attempts::Entity::delete_many()
        .filter(webhook_attempts::Column::DeliveryId.is_in(old.iter().cloned()))
        .exec(conn)
        .await?;
    let done = webhook_deliveries::Entity::delete_many()
        .filter(webhook_deliveries::Column::Id.is_in(old))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
