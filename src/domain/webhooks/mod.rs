//! Outbound webhooks, as a tenant manages them: endpoints (where, for which events, signed
//! with which secret), their deliveries and attempts. Turning events into deliveries and
//! sending them is `deliveries` (and the `webhooks` worker).

pub mod address;
pub mod deliveries;
pub mod signing;

use chrono::{DateTime, Duration, Utc};
use entity::{webhook_attempts, webhook_deliveries, webhook_endpoints};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::ids::{IdKind, new_id};
use super::{Error, Result, Tenant, ViolationCode, now};
use crate::auth::Scope;

/// The events an endpoint may ask for, as the `type` of the body names them.
pub const EVENT_TYPES: [&str; 7] = [
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.restored",
    "activity.logged",
    "activity.updated",
    "activity.deleted",
];

/// The type of the body `sendTestWebhook` sends.
pub const TEST_EVENT: &str = "webhook.test";

/// Endpoints one tenant may have.
pub const MAX_ENDPOINTS: u64 = 20;

/// How long a rotated-out secret keeps signing, at most.
pub const MAX_GRACE: Duration = Duration::days(7);

/// Deliveries one listing shows at most.
pub const MAX_DELIVERIES_PAGE: u64 = 100;

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub active: bool,
    pub disabled_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<&webhook_endpoints::Model> for Endpoint {
    fn from(m: &webhook_endpoints::Model) -> Self {
        Self {
            id: m.id.clone(),
            url: m.url.clone(),
            description: m.description.clone(),
            event_types: serde_json::from_str(&m.event_types).unwrap_or_default(),
            active: m.active,
            disabled_reason: m.disabled_reason.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// An endpoint and its secret, shown once: at creation and at each rotation.
pub struct WithSecret {
    pub endpoint: Endpoint,
    pub secret: String,
}

#[derive(Clone, Debug)]
pub struct Delivery {
    pub id: String,
    pub endpoint_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<webhook_deliveries::Model> for Delivery {
    fn from(m: webhook_deliveries::Model) -> Self {
        Self {
            id: m.id,
            endpoint_id: m.endpoint_id,
            event_type: m.event_type,
            status: m.status,
            attempts: m.attempts,
            next_attempt_at: m.next_attempt_at,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            last_latency_ms: m.last_latency_ms,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Attempt {
    pub number: i32,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<i32>,
    pub latency_ms: i32,
    pub error: Option<String>,
}

/// What a URL must be, checked against the rule of where webhooks may go.
async fn checked_url(url: &str, allow_private: bool) -> Result<String> {
    address::check(url.trim(), allow_private)
        .await
        .map(|url| url.to_string())
        .map_err(|refusal| Error::invalid(&["url"], ViolationCode::Invalid, refusal.to_string()))
}

/// The event types asked for: known, at least one, each once; and readable by the caller
/// (a payload shows the entity as its endpoint's creator may see it).
fn checked_types(t: &Tenant, types: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for ty in types {
        if !EVENT_TYPES.contains(&ty.as_str()) {
            return Err(Error::invalid(
                &["eventTypes"],
                ViolationCode::Invalid,
                format!(
                    "`{}` is not an event type; they are: {}",
                    ty.chars().take(60).collect::<String>(),
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
        let needs = if ty.starts_with("customer.") {
            Scope::CustomersRead
        } else {
            Scope::ActivitiesRead
        };
        if !t.who().has(needs) {
            return Err(Error::invalid(
                &["eventTypes"],
                ViolationCode::Invalid,
                format!("`{ty}` needs the `{}` scope", needs.as_str()),
            ));
        }
        if !out.contains(ty) {
            out.push(ty.clone());
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            &["eventTypes"],
            ViolationCode::Required,
            "name at least one event type",
        ));
    }
    Ok(out)
}

fn checked_description(description: Option<String>) -> Result<Option<String>> {
    match description {
        Some(d) if d.chars().count() > 500 => Err(Error::invalid(
            &["description"],
            ViolationCode::TooLong,
            "at most 500 characters",
        )),
        Some(d) if d.trim().is_empty() => Ok(None),
        other => Ok(other),
    }
}

/// An endpoint shows data with the scopes of its creator; only a caller holding all of them
/// may point it elsewhere, change what it hears, test or redeliver it (or a weaker token
/// with `webhooks:manage` could route another's view of the data to itself).
fn may_steer(t: &Tenant, endpoint: &webhook_endpoints::Model) -> Result<()> {
    let missing: Vec<&str> = endpoint
        .scopes
        .split(' ')
        .filter(|s| !s.is_empty())
        .filter(|s| !t.who().scopes.iter().any(|held| held.as_str() == *s))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(
            &["id"],
            ViolationCode::Invalid,
            format!(
                "this endpoint shows data as its creator may see it; changing, testing or redelivering it needs their scopes too ({})",
                missing.join(" ")
            ),
        ))
    }
}

async fn endpoint_row(t: &Tenant, id: &str) -> Result<webhook_endpoints::Model> {
    t.find::<webhook_endpoints::Entity>()
        .filter(webhook_endpoints::Column::Id.eq(id))
        .one(t.db())
        .await?
        .ok_or(Error::NotFound)
}

pub async fn create(
    t: &Tenant,
    url: &str,
    event_types: &[String],
    description: Option<String>,
    allow_private: bool,
) -> Result<WithSecret> {
    let description = checked_description(description)?;
    let event_types = checked_types(t, event_types)?;
    let url = checked_url(url, allow_private).await?;
    // Counted and inserted under one lock, so parallel creations cannot pass the cap.
    let txn = t.store().write().await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("webhook_endpoints\u{1f}{}", t.org()).into()],
        ))
        .await?;
    }
    let count = t.find::<webhook_endpoints::Entity>().count(&*txn).await?;
    // What has happened so far is not news to the new endpoint.
    let after_seq: i64 = t
        .find::<entity::events::Entity>()
        .select_only()
        .column_as(entity::events::Column::Seq.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(&*txn)
        .await?
        .flatten()
        .unwrap_or(0);
    if count >= MAX_ENDPOINTS {
        return Err(Error::invalid(
            &["url"],
            ViolationCode::TooMany,
            format!("an organization has at most {MAX_ENDPOINTS} webhook endpoints"),
        ));
    }
    let secret = signing::new_secret();
    let at = now();
    let row = t.stamp(webhook_endpoints::ActiveModel {
        id: Set(new_id(IdKind::WebhookEndpoint)),
        url: Set(url),
        description: Set(description),
        event_types: Set(serde_json::to_string(&event_types)?),
        scopes: Set(t
            .who()
            .scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")),
        secret: Set(secret.clone()),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        active: Set(true),
        disabled_reason: Set(None),
        failing_since: Set(None),
        after_seq: Set(after_seq),
        created_by: Set(t.who().sub.clone()),
        created_at: Set(at),
        updated_at: Set(at),
        ..Default::default()
    });
    let saved = row.insert(&*txn).await?;
    txn.commit().await?;
    Ok(WithSecret {
        endpoint: Endpoint::from(&saved),
        secret,
    })
}

/// A change to an endpoint; `None` leaves a field as it is.
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    /// `true` re-enables an endpoint that was disabled (its failures forgotten).
    pub active: Option<bool>,
}

pub async fn update(
    t: &Tenant,
    id: &str,
    patch: EndpointPatch,
    allow_private: bool,
) -> Result<Endpoint> {
    let current = endpoint_row(t, id).await?;
    may_steer(t, &current)?;
    let mut row: webhook_endpoints::ActiveModel = current.into();
    if let Some(description) = patch.description {
        row.description = Set(checked_description(description)?);
    }
    if let Some(types) = patch.event_types {
        row.event_types = Set(serde_json::to_string(&checked_types(t, &types)?)?);
    }
    if let Some(url) = patch.url {
        row.url = Set(checked_url(&url, allow_private).await?);
    }
    if let Some(active) = patch.active {
        row.active = Set(active);
        if active {
            row.disabled_reason = Set(None);
            row.failing_since = Set(None);
        } else {
            row.disabled_reason = Set(Some("disabled by a user".into()));
        }
    }
    row.updated_at = Set(now());
    let saved = row.update(t.db()).await?;
    Ok(Endpoint::from(&saved))
}

/// Deletes an endpoint with its deliveries and their attempts.
pub async fn delete(t: &Tenant, id: &str) -> Result<String> {
    endpoint_row(t, id).await?;
    let deliveries: Vec<String> = t
        .find::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::EndpointId.eq(id))
        .select_only()
        .column(webhook_deliveries::Column::Id)
        .into_tuple()
        .all(t.db())
        .await?;
    for chunk in deliveries.chunks(500) {
        t.delete::<webhook_attempts::Entity>()
            .filter(webhook_attempts::Column::DeliveryId.is_in(chunk.iter().cloned()))
            .exec(t.db())
            .await?;
    }
    t.delete::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::EndpointId.eq(id))
        .exec(t.db())
        .await?;
    t.delete::<webhook_endpoints::Entity>()
        .filter(webhook_endpoints::Column::Id.eq(id))
        .exec(t.db())
        .await?;
    Ok(id.to_owned())
}

/// A new secret; the old one keeps signing (beside the new) for `grace`.
pub async fn rotate_secret(t: &Tenant, id: &str, grace: Duration) -> Result<WithSecret> {
    if grace < Duration::zero() || grace > MAX_GRACE {
        return Err(Error::invalid(
            &["gracePeriodSeconds"],
            ViolationCode::Invalid,
            "must be between 0 and 604800 (a week)",
        ));
    }
    let current = endpoint_row(t, id).await?;
    may_steer(t, &current)?;
    let secret = signing::new_secret();
    let at = now();
    let old = current.secret.clone();
    let mut row: webhook_endpoints::ActiveModel = current.into();
    row.previous_secret = Set(Some(old));
    row.previous_secret_expires_at = Set(Some(at + grace));
    row.secret = Set(secret.clone());
    row.updated_at = Set(at);
    let saved = row.update(t.db()).await?;
    Ok(WithSecret {
        endpoint: Endpoint::from(&saved),
        secret,
    })
}

pub async fn list(t: &Tenant) -> Result<Vec<Endpoint>> {
    let rows = t
        .find::<webhook_endpoints::Entity>()
        .order_by_asc(webhook_endpoints::Column::Id)
        .all(t.db())
        .await?;
    Ok(rows.iter().map(Endpoint::from).collect())
}

/// An endpoint's deliveries, newest first.
pub async fn deliveries(t: &Tenant, endpoint_id: &str, first: u64) -> Result<Vec<Delivery>> {
    let rows = t
        .find::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint_id))
        .order_by_desc(webhook_deliveries::Column::CreatedAt)
        .order_by_desc(webhook_deliveries::Column::Id)
        .limit(first.min(MAX_DELIVERIES_PAGE))
        .all(t.db())
        .await?;
    Ok(rows.into_iter().map(Delivery::from).collect())
}

/// A delivery's attempts, in order.
pub async fn attempts(t: &Tenant, delivery_id: &str) -> Result<Vec<Attempt>> {
    let rows = t
        .find::<webhook_attempts::Entity>()
        .filter(webhook_attempts::Column::DeliveryId.eq(delivery_id))
        .order_by_asc(webhook_attempts::Column::Number)
        .all(t.db())
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| Attempt {
            number: m.number,
            attempted_at: m.attempted_at,
            status_code: m.status_code,
            latency_ms: m.latency_ms,
            error: m.error,
        })
        .collect())
}

/// Queues a `webhook.test` delivery to an endpoint, sent like any other.
pub async fn send_test(t: &Tenant, endpoint_id: &str) -> Result<Delivery> {
    let endpoint = endpoint_row(t, endpoint_id).await?;
    may_steer(t, &endpoint)?;
    let at = now();
    let body = serde_json::json!({
        "type": TEST_EVENT,
        "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": {"endpointId": endpoint.id},
    });
    let row = t.stamp(deliveries::new_row(
        &endpoint.id,
        None,
        TEST_EVENT,
        body.to_string(),
        at,
    ));
    let saved = row.insert(t.db()).await?;
    Ok(Delivery::from(saved))
}

/// Sends a delivery again, under its `webhook-id`, whatever became of it.
pub async fn redeliver(t: &Tenant, delivery_id: &str) -> Result<Delivery> {
    let current = t
        .find::<webhook_deliveries::Entity>()
        .filter(webhook_deliveries::Column::Id.eq(delivery_id))
        .one(t.db())
        .await?
        .ok_or(Error::NotFound)?;
    may_steer(t, &endpoint_row(t, &current.endpoint_id).await?)?;
    let mut row: webhook_deliveries::ActiveModel = current.into();
    row.status = Set(deliveries::PENDING.to_owned());
    row.next_attempt_at = Set(Some(now()));
    row.lease_until = Set(None);
    let saved = row.update(t.db()).await?;
    Ok(Delivery::from(saved))
}
