//! Idempotency keys: a mutation sent with a key runs once; a retry with the same key (from
//! the same tenant and caller) and the same request gets the first answer back, and the same
//! key with another request is refused. Keys are kept `KEPT_HOURS`.
//!
//! A key is claimed before its request runs, in a transaction of its own, so that two
//! copies of one request sent at once cannot both run: the second finds the claim and is
//! told to wait. A claim whose request died before answering (a crash) lapses after its
//! lease, and the next retry runs.

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_keys;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::{Result, Tenant, now};

use idempotency_keys::Column as K;

/// The longest key taken.
pub const KEY_MAX: usize = 255;
/// How long a key is remembered.
pub const KEPT_HOURS: i64 = 24;

/// A key as a client sent it: 1 to 255 printable ASCII characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The key, or why it is refused (a message for the client).
    pub fn parse(raw: &[u8]) -> std::result::Result<Self, String> {
        if raw.is_empty() || raw.len() > KEY_MAX {
            return Err(format!(
                "the Idempotency-Key must be 1 to {KEY_MAX} characters"
            ));
        }
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err("the Idempotency-Key must be printable ASCII".to_owned());
        }
        let key = String::from_utf8(raw.to_vec())
            .map_err(|_| "the Idempotency-Key must be printable ASCII".to_owned())?;
        Ok(Self(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whom a key belongs to, beside its tenant: an API client by its id (a retry may come with
/// a fresh token), a user by subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyOwner(pub String);

/// What a request with a key is to do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// Run it: the key is claimed until `finish` or `release`.
    Run,
    /// It ran before: answer this body.
    Replay(String),
    /// The same request holds the key and has not answered yet.
    InProgress,
    /// The key was used for another request.
    Reused,
}

/// Claims `key` for a request with `fingerprint`, holding it for `lease` (longer than a
/// request may run).
pub async fn claim(
    t: &Tenant,
    owner: &KeyOwner,
    key: &IdempotencyKey,
    fingerprint: &str,
    lease: std::time::Duration,
) -> Result<Claim> {
    let at = now();
    let lease = Duration::from_std(lease).unwrap_or(Duration::hours(1));
    let txn = t.store().write().await?;
    let found = t
        .find::<idempotency_keys::Entity>()
        .filter(K::Caller.eq(&owner.0))
        .filter(K::IdempotencyKey.eq(key.as_str()))
        .lock_exclusive()
        .one(&*txn)
        .await?;
    let claim = match found {
        Some(row) if row.expires_at > at => {
            if row.fingerprint != fingerprint {
                Claim::Reused
            } else if let Some(body) = row.response {
                Claim::Replay(body)
            } else if row.locked_until.is_some_and(|until| until > at) {
                Claim::InProgress
            } else {
                // Its first request died before answering: this one runs instead.
                renew(&txn, t, owner, key, fingerprint, row.created_at, at + lease).await?;
                Claim::Run
            }
        }
        Some(_expired) => {
            renew(&txn, t, owner, key, fingerprint, at, at + lease).await?;
            Claim::Run
        }
        None => {
            let row = t.stamp(idempotency_keys::ActiveModel {
                caller: Set(owner.0.clone()),
                idempotency_key: Set(key.as_str().to_owned()),
                fingerprint: Set(fingerprint.to_owned()),
                response: Set(None),
                locked_until: Set(Some(at + lease)),
                created_at: Set(at),
                expires_at: Set(at + Duration::hours(KEPT_HOURS)),
                ..Default::default()
            });
            // Two first requests at once (on PostgreSQL): the later waits for the earlier's
            // claim to commit, inserts nothing, and is told the key is in use.
            let inserted = idempotency_keys::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([K::OrgId, K::Caller, K::IdempotencyKey])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_without_returning(&*txn)
                .await?;
            if inserted == 0 {
                Claim::InProgress
            } else {
                Claim::Run
            }
        }
    };
    txn.commit().await?;
    Ok(claim)
}

/// Makes the key's row a fresh claim for `fingerprint`.
async fn renew(
    txn: &sea_orm::DatabaseTransaction,
    t: &Tenant,
    owner: &KeyOwner,
    key: &IdempotencyKey,
    fingerprint: &str,
    created_at: DateTime<Utc>,
    locked_until: DateTime<Utc>,
) -> Result<()> {
    t.update::<idempotency_keys::Entity>()
        .set(idempotency_keys::ActiveModel {
            fingerprint: Set(fingerprint.to_owned()),
            response: Set(None),
            locked_until: Set(Some(locked_until)),
            created_at: Set(created_at),
            expires_at: Set(created_at + Duration::hours(KEPT_HOURS)),
            ..Default::default()
        })
        .filter(K::Caller.eq(&owner.0))
        .filter(K::IdempotencyKey.eq(key.as_str()))
        .exec(txn)
        .await?;
    Ok(())
}

/// Keeps the answer of the request that claimed `key`, for its retries.
pub async fn finish(
    t: &Tenant,
    owner: &KeyOwner,
    key: &IdempotencyKey,
    fingerprint: &str,
    response: String,
) -> Result<()> {
    let txn = t.store().write().await?;
    t.update::<idempotency_keys::Entity>()
        .set(idempotency_keys::ActiveModel {
            response: Set(Some(response)),
            locked_until: Set(None),
            ..Default::default()
        })
        .filter(K::Caller.eq(&owner.0))
        .filter(K::IdempotencyKey.eq(key.as_str()))
        .filter(K::Fingerprint.eq(fingerprint))
        .filter(K::Response.is_null())
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Forgets the claim of a request that did nothing (refused before it ran, or every write
/// of it failed), so that the key may be sent again.
pub async fn release(
    t: &Tenant,
    owner: &KeyOwner,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<()> {
    let txn = t.store().write().await?;
    t.delete::<idempotency_keys::Entity>()
        .filter(K::Caller.eq(&owner.0))
        .filter(K::IdempotencyKey.eq(key.as_str()))
        .filter(K::Fingerprint.eq(fingerprint))
        .filter(K::Response.is_null())
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// Forgets expired keys of every tenant (housekeeping).
pub async fn prune(conn: &impl sea_orm::ConnectionTrait) -> Result<u64> {
    let done = idempotency_keys::Entity::delete_many()
        .filter(K::ExpiresAt.lt(now()))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}
