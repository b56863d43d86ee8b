//! Inbound social webhooks, as a tenant manages them: connections to a social network (where
//! its webhooks arrive and the secrets that verify them) and the messages received through
//! them. Verifying and reading what a network sends is `networks`; turning it into
//! customers and activities is `inbound`.

pub mod inbound;
pub mod networks;

use chrono::{DateTime, Utc};
use entity::{inbound_messages, social_connections};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use super::ids::{IdKind, new_id};
use super::validate as v;
use super::{Error, Result, Tenant, ViolationCode, now};
use crate::domain::webhooks::signing;

/// Connections one tenant may have.
pub const MAX_CONNECTIONS: u64 = 20;

/// Inbound messages one listing shows at most.
pub const MAX_MESSAGES_PAGE: u64 = 100;

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum Network {
    /// Facebook pages and Instagram accounts (Graph API webhooks).
    Meta,
    /// X (the Account Activity API).
    X,
    /// Any sender of Standard Webhooks, in this service's own message format.
    Generic,
}

impl Network {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Its segment of the inbound URL, `/webhooks/inbound/{segment}/{id}`.
    pub fn segment(self) -> &'static str {
        match self {
            Network::Meta => "meta",
            Network::X => "x",
            Network::Generic => "generic",
        }
    }

    pub fn from_segment(segment: &str) -> Option<Self> {
        [Network::Meta, Network::X, Network::Generic]
            .into_iter()
            .find(|n| n.segment() == segment)
    }
}

#[derive(Clone, Debug)]
pub struct Connection {
    pub id: String,
    pub network: Network,
    pub account_id: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Connection {
    /// Where the network's webhooks go (after the server's public origin).
    pub fn path(&self) -> String {
        format!("/webhooks/inbound/{}/{}", self.network.segment(), self.id)
    }
}

impl TryFrom<&social_connections::Model> for Connection {
    type Error = Error;

    fn try_from(m: &social_connections::Model) -> Result<Self> {
        Ok(Self {
            id: m.id.clone(),
            network: m.network.parse().map_err(|_| {
                Error::Internal(format!("unknown network {:?} in the database", m.network).into())
            })?,
            account_id: m.account_id.clone(),
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// A new connection; the secrets are write-only: they verify what arrives and are never
/// shown again.
#[derive(Clone, Debug)]
pub struct NewConnection {
    pub network: Network,
    pub account_id: String,
    pub app_secret: String,
    pub verify_token: Option<String>,
}

/// A change to a connection; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct ConnectionPatch {
    pub account_id: Option<String>,
    pub app_secret: Option<String>,
    pub verify_token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::IntoStaticStr)]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum InboundStatus {
    /// Logged as an activity.
    Processed,
    /// Verified, but not something this service can map to a customer and an activity:
    /// acknowledged and kept for inspection.
    Unmappable,
}

impl InboundStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

#[derive(Clone, Debug)]
pub struct InboundMessage {
    pub id: String,
    pub connection_id: String,
    pub event_id: String,
    pub status: InboundStatus,
    pub reason: Option<String>,
    pub customer_id: Option<String>,
    pub activity_id: Option<String>,
    /// What arrived, for unmappable messages.
    pub payload: Option<String>,
    pub received_at: DateTime<Utc>,
}

impl From<inbound_messages::Model> for InboundMessage {
    fn from(m: inbound_messages::Model) -> Self {
        Self {
            id: m.id,
            connection_id: m.connection_id,
            event_id: m.event_id,
            status: m.status.parse().unwrap_or(InboundStatus::Unmappable),
            reason: m.reason,
            customer_id: m.customer_id,
            activity_id: m.activity_id,
            payload: m.payload,
            received_at: m.received_at,
        }
    }
}

fn checked_account_id(raw: &str) -> Result<String> {
    v::required_text("accountId", raw, 255).map_err(|found| Error::Invalid(vec![found]))
}

/// A secret: printable, no spaces, long enough to resist guessing; for a `GENERIC`
/// connection, a Standard Webhooks key (`whsec_` and base64 of 16 to 64 bytes).
fn checked_secret(network: Network, raw: &str) -> Result<String> {
    let invalid = |message: &str| Error::invalid(&["appSecret"], ViolationCode::Invalid, message);
    if raw.len() > 255 {
        return Err(Error::invalid(
            &["appSecret"],
            ViolationCode::TooLong,
            "must be at most 255 characters",
        ));
    }
    if !raw.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid(
            "must be printable ASCII without spaces, as the network shows it",
        ));
    }
    if network == Network::Generic {
        let key = raw
            .strip_prefix("whsec_")
            .and_then(|_| signing::key_of(raw))
            .filter(|key| (16..=64).contains(&key.len()));
        if key.is_none() {
            return Err(invalid(
                "must be the sender's Standard Webhooks secret: `whsec_` and the base64 of a 16 to 64 byte key",
            ));
        }
    } else if raw.len() < 16 {
        return Err(invalid(
            "is too short to be the network's app secret (at least 16 characters)",
        ));
    }
    Ok(raw.to_owned())
}

fn checked_verify_token(network: Network, raw: Option<String>) -> Result<Option<String>> {
    let raw = raw.filter(|t| !t.is_empty());
    match (network, raw) {
        (Network::Meta, None) => Err(Error::invalid(
            &["verifyToken"],
            ViolationCode::Required,
            "a META connection needs the verify token you give Meta when subscribing",
        )),
        (Network::Meta, Some(token)) => {
            if token.len() > 255 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::invalid(
                    &["verifyToken"],
                    ViolationCode::Invalid,
                    "must be 1 to 255 printable ASCII characters without spaces",
                ));
            }
            Ok(Some(token))
        }
        (_, Some(_)) => Err(Error::invalid(
            &["verifyToken"],
            ViolationCode::Invalid,
            "only META connections use a verify token",
        )),
        (_, None) => Ok(None),
    }
}

async fn connection_row(t: &Tenant, id: &str) -> Result<social_connections::Model> {
    t.find::<social_connections::Entity>()
        .filter(social_connections::Column::Id.eq(id))
        .one(t.db())
        .await?
        .ok_or(Error::NotFound)
}

pub async fn create(t: &Tenant, input: NewConnection) -> Result<Connection> {
    let account_id = checked_account_id(&input.account_id)?;
    let app_secret = checked_secret(input.network, &input.app_secret)?;
    let verify_token = checked_verify_token(input.network, input.verify_token)?;
    // Counted and inserted under one lock, so parallel creations cannot pass the cap.
    let txn = t.store().write().await?;
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
        txn.execute_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
            [format!("social_connections\u{1f}{}", t.org()).into()],
        ))
        .await?;
    }
    let count = t.find::<social_connections::Entity>().count(&*txn).await?;
    if count >= MAX_CONNECTIONS {
        return Err(Error::invalid(
            &["network"],
            ViolationCode::TooMany,
            format!("an organization has at most {MAX_CONNECTIONS} social connections"),
        ));
    }
    let at = now();
    let saved = t
        .stamp(social_connections::ActiveModel {
            id: Set(new_id(IdKind::SocialConnection)),
            network: Set(input.network.as_str().to_owned()),
            account_id: Set(account_id),
            app_secret: Set(app_secret),
            verify_token: Set(verify_token),
            created_by: Set(t.who().sub.clone()),
            created_at: Set(at),
            updated_at: Set(at),
            ..Default::default()
        })
        .insert(&*txn)
        .await?;
    t.store().commit(txn).await?;
    Connection::try_from(&saved)
}

pub async fn update(t: &Tenant, id: &str, patch: ConnectionPatch) -> Result<Connection> {
    let current = connection_row(t, id).await?;
    let network = Connection::try_from(&current)?.network;
    let mut row: social_connections::ActiveModel = current.into();
    if let Some(account_id) = patch.account_id {
        row.account_id = Set(checked_account_id(&account_id)?);
    }
    if let Some(secret) = patch.app_secret {
        row.app_secret = Set(checked_secret(network, &secret)?);
    }
    if let Some(token) = patch.verify_token {
        row.verify_token = Set(checked_verify_token(network, Some(token))?);
    }
    row.updated_at = Set(now());
    let saved = row.update(t.db()).await?;
    Connection::try_from(&saved)
}

/// Deletes a connection and what was received through it (the activities stay).
pub async fn delete(t: &Tenant, id: &str) -> Result<String> {
    connection_row(t, id).await?;
    t.delete::<inbound_messages::Entity>()
        .filter(inbound_messages::Column::ConnectionId.eq(id))
        .exec(t.db())
        .await?;
    t.delete::<social_connections::Entity>()
        .filter(social_connections::Column::Id.eq(id))
        .exec(t.db())
        .await?;
    Ok(id.to_owned())
}

pub async fn list(t: &Tenant) -> Result<Vec<Connection>> {
    t.find::<social_connections::Entity>()
        .order_by_asc(social_connections::Column::Id)
        .all(t.db())
        .await?
        .iter()
        .map(Connection::try_from)
        .collect()
}

/// What arrived through a connection, newest first.
pub async fn messages(
    t: &Tenant,
    connection_id: &str,
    status: Option<InboundStatus>,
    first: u64,
) -> Result<Vec<InboundMessage>> {
    use inbound_messages::Column as M;
    let mut query = t
        .find::<inbound_messages::Entity>()
        .filter(M::ConnectionId.eq(connection_id));
    if let Some(status) = status {
        query = query.filter(M::Status.eq(status.as_str()));
    }
    let rows = query
        .order_by_desc(M::ReceivedAt)
        .order_by_desc(M::Id)
        .limit(first.min(MAX_MESSAGES_PAGE))
        .all(t.db())
        .await?;
    Ok(rows.into_iter().map(InboundMessage::from).collect())
}
