//! What arrives through a connection, written: each verified message becomes a
//! `SOCIAL_MESSAGE` activity on the customer whose social profile (network and user id) sent
//! it, and a `LEAD` customer with that profile is created when none has it. Each provider
//! event is received once (keyed by connection and event id), so a network's retries and a
//! replayed delivery write nothing new; what cannot be mapped is kept for inspection.
//!
//! The connection is found by the id in its URL before its tenant is known: that one read
//! crosses tenants. Everything after it runs as the connection, in its tenant.

use entity::{activities, customers, inbound_messages, social_connections, social_profiles};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect, Set, Statement,
};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use super::networks::{Incoming, SocialMessage, clean_line, clean_text};
use super::{InboundStatus, Network};
use crate::auth::{Principal, Scope};
use crate::domain::activities::{ActivityKind, NewActivity, log_in};
use crate::domain::customers::{LifecycleStage, NewCustomer, NewSocialProfile, create_in};
use crate::domain::ids::{IdKind, new_id};
use crate::domain::tenant::CrossTenant;
use crate::domain::{Error, Result, Store, Tenant, WriteTxn, now};

/// A connection as its inbound URL needs it: how to verify, and whose data it writes.
#[derive(Clone, Debug)]
pub struct InboundConnection {
    pub id: String,
    pub org_id: String,
    pub network: Network,
    pub account_id: String,
    pub secret: String,
    pub verify_token: Option<String>,
}

/// The connection an inbound URL names, if it exists and is of that network.
pub async fn connection(
    store: &Store,
    network: Network,
    id: &str,
) -> Result<Option<InboundConnection>> {
    // An id that is not a connection's cannot name one: no query for it.
    if IdKind::of(id) != Some(IdKind::SocialConnection) {
        return Ok(None);
    }
    let found = store
        .cross_tenant()
        .find_in_every_tenant::<social_connections::Entity>()
        .filter(social_connections::Column::Id.eq(id))
        .one(store.db())
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    if row.network != network.as_str() {
        return Ok(None);
    }
    Ok(Some(InboundConnection {
        id: row.id,
        org_id: row.org_id,
        network,
        account_id: row.account_id,
        secret: row.app_secret,
        verify_token: row.verify_token,
    }))
}

/// What became of a delivery's items.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Receipt {
    /// Logged as activities.
    pub processed: usize,
    /// Received before (a retry or a replay): nothing written.
    pub duplicates: usize,
    /// Kept for inspection.
    pub unmappable: usize,
    /// Not news (read receipts, the account's own messages…).
    pub ignored: usize,
}

/// The acting principal of a connection's writes: the events it appends name it.
fn principal(connection: &InboundConnection) -> Principal {
    Principal {
        sub: format!("social-connection:{}", connection.id),
        org: connection.org_id.clone(),
        scopes: [
            Scope::CustomersRead,
            Scope::CustomersWrite,
            Scope::ActivitiesRead,
            Scope::ActivitiesWrite,
            Scope::PiiRead,
        ]
        .into_iter()
        .collect(),
    }
}

/// Items written per transaction: a big delivery holds the (SQLite) writer for a few items
/// at a time, so other tenants' writes go on between them.
const ITEMS_PER_TRANSACTION: usize = 25;

/// Deliveries written at once by this instance: the rest wait for a turn without holding a
/// database connection, so a burst from a network cannot drain the pool.
static WRITERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// One queue per tenant: a tenant's deliveries take turns (two messages from one new sender
/// at once would otherwise both create a lead with the same profile), waiting here rather
/// than on a database lock with a connection in hand.
static TURNS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

fn turn_of(org: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut turns = TURNS.lock().unwrap_or_else(PoisonError::into_inner);
    if turns.len() > 1_000 {
        turns.retain(|_, turn| Arc::strong_count(turn) > 1);
    }
    turns.entry(org.to_owned()).or_default().clone()
}

/// Writes a verified delivery's items, a few per transaction. Each item's outcome is
/// recorded with its writes, so a delivery cut short by a crash is finished by the
/// network's retry (what was written is then a duplicate).
pub async fn receive(
    store: &Store,
    connection: &InboundConnection,
    items: Vec<Incoming>,
) -> Result<Receipt> {
    let mut receipt = Receipt::default();
    let t = store.tenant(&principal(connection));
    let turn = turn_of(&connection.org_id);
    let _turn = turn.lock().await;
    let _writer = WRITERS
        .acquire()
        .await
        .map_err(|_| Error::Internal("the inbound writers' semaphore is closed".into()))?;
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let txn = store.write().await?;
        // Instances on one PostgreSQL take turns per tenant too.
        if txn.get_database_backend() == DbBackend::Postgres {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                [format!("social_inbound\u{1f}{}", connection.org_id).into()],
            ))
            .await?;
        }
        // Deleted meanwhile: nothing more is written through it.
        let still_there = t
            .find::<social_connections::Entity>()
            .select_only()
            .column(social_connections::Column::Id)
            .filter(social_connections::Column::Id.eq(&connection.id))
            .into_tuple::<String>()
            .one(&*txn)
            .await?;
        if still_there.is_none() {
            return Err(Error::NotFound);
        }
        for item in items.by_ref().take(ITEMS_PER_TRANSACTION) {
            receive_one(&txn, &t, connection, item, &mut receipt).await?;
        }
        store.commit(txn).await?;
    }
    Ok(receipt)
}

async fn receive_one(
    txn: &WriteTxn,
    t: &Tenant,
    connection: &InboundConnection,
    item: Incoming,
    receipt: &mut Receipt,
) -> Result<()> {
    match item {
        Incoming::Ignored => receipt.ignored += 1,
        Incoming::Unmappable {
            event_id,
            reason,
            payload,
        } => {
            if claim(txn, t, connection, &event_id).await? == Claim::New {
                keep_unmappable(txn, t, connection, &event_id, &reason, &payload).await?;
                receipt.unmappable += 1;
            } else {
                receipt.duplicates += 1;
            }
        }
        Incoming::Message(message) => {
            // An event kept as unmappable is tried again: its customer may be back from the
            // trash.
            if claim(txn, t, connection, &message.event_id).await? == Claim::Taken {
                receipt.duplicates += 1;
                return Ok(());
            }
            match log_message_guarded(txn, t, &message).await? {
                Logged::Written {
                    customer_id,
                    activity_id,
                    new,
                } => {
                    settle(txn, t, connection, &message.event_id, |row| {
                        row.status = Set(InboundStatus::Processed.as_str().to_owned());
                        row.reason = Set(None);
                        row.payload = Set(None);
                        row.customer_id = Set(Some(customer_id));
                        row.activity_id = Set(Some(activity_id));
                    })
                    .await?;
                    if new {
                        receipt.processed += 1;
                    } else {
                        receipt.duplicates += 1;
                    }
                }
                Logged::Unmappable(reason) => {
                    keep_unmappable(
                        txn,
                        t,
                        connection,
                        &message.event_id,
                        &reason,
                        &message.payload,
                    )
                    .await?;
                    receipt.unmappable += 1;
                }
            }
        }
    }
    Ok(())
}

/// Logs a message inside a savepoint. A concurrent write through the API can take the
/// sender's profile or the message's id between this transaction's reads and its inserts;
/// the insert then fails (and on PostgreSQL would abort the whole transaction), so the item
/// is rolled back to its savepoint and read again, finding what the other write made.
async fn log_message_guarded(
    txn: &WriteTxn,
    t: &Tenant,
    message: &SocialMessage,
) -> Result<Logged> {
    let mut tries = 0;
    loop {
        tries += 1;
        txn.execute_unprepared("SAVEPOINT inbound_item").await?;
        match log_message(txn, t, message).await {
            Ok(logged) => {
                txn.execute_unprepared("RELEASE SAVEPOINT inbound_item")
                    .await?;
                return Ok(logged);
            }
            Err(err) => {
                txn.execute_unprepared("ROLLBACK TO SAVEPOINT inbound_item")
                    .await?;
                txn.execute_unprepared("RELEASE SAVEPOINT inbound_item")
                    .await?;
                match err {
                    Error::Invalid(found) if tries >= 2 => {
                        return Ok(Logged::Unmappable(reason_of(&found)));
                    }
                    err if tries >= 2 => return Err(err),
                    _ => {}
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Claim {
    /// First arrival.
    New,
    /// Arrived before and was kept as unmappable.
    Retry,
    /// Arrived before and was processed.
    Taken,
}

/// Records that an event arrived, or tells how it fared before.
async fn claim(
    txn: &WriteTxn,
    t: &Tenant,
    connection: &InboundConnection,
    event_id: &str,
) -> Result<Claim> {
    use inbound_messages::Column as M;
    let row = t.stamp(inbound_messages::ActiveModel {
        id: Set(new_id(IdKind::InboundMessage)),
        connection_id: Set(connection.id.clone()),
        event_id: Set(event_id.to_owned()),
        status: Set(InboundStatus::Processed.as_str().to_owned()),
        reason: Set(None),
        customer_id: Set(None),
        activity_id: Set(None),
        payload: Set(None),
        received_at: Set(now()),
        ..Default::default()
    });
    let inserted = inbound_messages::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([M::ConnectionId, M::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&**txn)
        .await?;
    if inserted == 1 {
        return Ok(Claim::New);
    }
    let status = t
        .find::<inbound_messages::Entity>()
        .select_only()
        .column(M::Status)
        .filter(M::ConnectionId.eq(&connection.id))
        .filter(M::EventId.eq(event_id))
        .into_tuple::<String>()
        .one(&**txn)
        .await?;
    Ok(
        if status.as_deref() == Some(InboundStatus::Unmappable.as_str()) {
            Claim::Retry
        } else {
            Claim::Taken
        },
    )
}

async fn settle(
    txn: &WriteTxn,
    t: &Tenant,
    connection: &InboundConnection,
    event_id: &str,
    change: impl FnOnce(&mut inbound_messages::ActiveModel),
) -> Result<()> {
    use inbound_messages::Column as M;
    let mut row = inbound_messages::ActiveModel::default();
    change(&mut row);
    t.update::<inbound_messages::Entity>()
        .set(row)
        .filter(M::ConnectionId.eq(&connection.id))
        .filter(M::EventId.eq(event_id))
        .exec(&**txn)
        .await?;
    Ok(())
}

/// The most of an unmappable payload kept.
const KEPT_PAYLOAD_BYTES: usize = 256 * 1024;

async fn keep_unmappable(
    txn: &WriteTxn,
    t: &Tenant,
    connection: &InboundConnection,
    event_id: &str,
    reason: &str,
    payload: &str,
) -> Result<()> {
    let reason = clean_line(reason, 500);
    // NUL cannot be stored in PostgreSQL text; the rest is kept as it came.
    let payload = clean_payload(payload);
    settle(txn, t, connection, event_id, |row| {
        row.status = Set(InboundStatus::Unmappable.as_str().to_owned());
        row.reason = Set(Some(reason));
        row.payload = Set(Some(payload));
    })
    .await
}

fn clean_payload(payload: &str) -> String {
    let mut end = payload.len().min(KEPT_PAYLOAD_BYTES);
    while !payload.is_char_boundary(end) {
        end -= 1;
    }
    payload[..end].replace('\0', "\u{FFFD}")
}

enum Logged {
    Written {
        customer_id: String,
        activity_id: String,
        /// `false`: the same message was logged before, through another connection or the
        /// API, as this activity.
        new: bool,
    },
    Unmappable(String),
}

fn label(network: &str) -> String {
    match network {
        "facebook" => "Facebook".to_owned(),
        "instagram" => "Instagram".to_owned(),
        "x" => "X".to_owned(),
        other => other.to_owned(),
    }
}

/// The sender's profile as stored, or why it cannot be.
fn profile_of(message: &SocialMessage) -> std::result::Result<NewSocialProfile, String> {
    let id = clean_line(&message.sender.id, 255);
    if id.is_empty() || id.chars().count() != message.sender.id.chars().count() {
        return Err("the sender's id is empty, longer than 255 characters or not one line".into());
    }
    let handle = message
        .sender
        .handle
        .as_deref()
        .map(|h| clean_line(h, 255))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| id.clone());
    let url = message
        .sender
        .url
        .as_deref()
        .filter(|u| u.len() <= 2048)
        .and_then(|u| url::Url::parse(u).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .map(|u| u.to_string())
        // Normalising can lengthen it (`é` becomes `%C3%A9`): dropped rather than refused.
        .filter(|u| u.len() <= 2048);
    Ok(NewSocialProfile {
        network: message.network.clone(),
        handle,
        network_user_id: Some(id),
        url,
    })
}

/// The customer a message is from (created as a lead when new) and its activity.
async fn log_message(txn: &WriteTxn, t: &Tenant, message: &SocialMessage) -> Result<Logged> {
    let profile = match profile_of(message) {
        Ok(profile) => profile,
        Err(reason) => return Ok(Logged::Unmappable(reason)),
    };
    let logged_before = t
        .find::<activities::Entity>()
        .select_only()
        .column(activities::Column::Id)
        .column(activities::Column::CustomerId)
        .filter(activities::Column::Source.eq(&message.network))
        .filter(activities::Column::ExternalId.eq(&message.event_id))
        .into_tuple::<(String, String)>()
        .one(&**txn)
        .await?;
    if let Some((activity_id, customer_id)) = logged_before {
        return Ok(Logged::Written {
            customer_id,
            activity_id,
            new: false,
        });
    }
    let known = t
        .find::<social_profiles::Entity>()
        .select_only()
        .column(social_profiles::Column::CustomerId)
        .filter(social_profiles::Column::Network.eq(&profile.network))
        .filter(social_profiles::Column::NetworkUserId.eq(profile.network_user_id.as_deref()))
        .into_tuple::<String>()
        .one(&**txn)
        .await?;
    let network = label(&message.network);
    let who = match (&message.sender.handle, &message.sender.name) {
        (Some(handle), _) if !clean_line(handle, 100).is_empty() => {
            format!("@{}", clean_line(handle, 100))
        }
        (_, Some(name)) if !clean_line(name, 100).is_empty() => clean_line(name, 100),
        _ => format!("{network} user {}", clean_line(&message.sender.id, 100)),
    };
    let customer_id = match known {
        Some(customer_id) => {
            let live = t
                .find::<customers::Entity>()
                .select_only()
                .column(customers::Column::Id)
                .filter(customers::Column::Id.eq(&customer_id))
                .filter(customers::Column::DeletedAt.is_null())
                .into_tuple::<String>()
                .one(&**txn)
                .await?;
            if live.is_none() {
                return Ok(Logged::Unmappable(
                    "the customer with this social profile is in the trash: restore it, and the message is logged when the network sends it again".into(),
                ));
            }
            customer_id
        }
        None => {
            let name = match &message.sender.name {
                Some(name) if !clean_line(name, 200).is_empty() => clean_line(name, 200),
                _ => clean_line(&who, 200),
            };
            let lead = NewCustomer {
                name,
                lifecycle_stage: Some(LifecycleStage::Lead),
                social_profiles: vec![profile],
                ..NewCustomer::default()
            };
            create_in(txn, t, lead, None).await?.id.into_string()
        }
    };
    let text = clean_text(&message.text, crate::domain::activities::BODY_MAX_BYTES);
    let activity = NewActivity {
        customer_id: customer_id.clone(),
        kind: ActivityKind::SocialMessage,
        subject: clean_line(&format!("{network} {} from {who}", message.what), 500),
        body: Some(text).filter(|t| !t.is_empty()),
        occurred_at: message.occurred_at,
        due_at: None,
        completed_at: None,
        source: Some(message.network.clone()),
        external_id: Some(message.event_id.clone()),
    };
    let activity = log_in(txn, t, activity, None).await?;
    Ok(Logged::Written {
        customer_id,
        activity_id: activity.id.into_string(),
        new: true,
    })
}

fn reason_of(found: &[crate::domain::FieldViolation]) -> String {
    found
        .iter()
        .map(|v| format!("{}: {}", v.field.join("."), v.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Forgets what arrived longer ago than `keep` (retries and replays come within days).
pub async fn prune(db: &sea_orm::DatabaseConnection, keep: chrono::Duration) -> Result<u64> {
    let cut = now() - keep;
    let done = CrossTenant::on(db)
        .delete_in_every_tenant::<inbound_messages::Entity>()
        .filter(inbound_messages::Column::ReceivedAt.lt(cut))
        .exec(db)
        .await?;
    Ok(done.rows_affected)
}
