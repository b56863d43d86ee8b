//! API clients: integrations that authenticate with OAuth2 client credentials. Secrets are
//! shown once and stored as Argon2id hashes; a rotation keeps the previous secret valid for
//! a grace period; revocation ends the client and every token issued to it.

mod secrets;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use entity::{api_clients, revoked_tokens};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

use super::ids::{IdKind, new_id};
use super::tenant::CrossTenant;
use super::validate::{self as v, Violations};
use super::{Error, FieldViolation, Result, Store, Tenant, ViolationCode, now};
use crate::auth::{Principal, Scope};

pub use secrets::verify_secret;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiClient {
    pub id: String,
    pub org_id: String,
    pub name: String,
    pub scopes: BTreeSet<Scope>,
    pub created_at: DateTime<Utc>,
    pub secret_rotated_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<&api_clients::Model> for ApiClient {
    fn from(m: &api_clients::Model) -> Self {
        Self {
            id: m.id.clone(),
            org_id: m.org_id.clone(),
            name: m.name.clone(),
            scopes: Principal::parse_scopes(&m.scopes),
            created_at: m.created_at,
            secret_rotated_at: m.secret_rotated_at,
            revoked_at: m.revoked_at,
        }
    }
}

/// A client together with its secret, which exists in clear only in this value.
pub struct IssuedSecret {
    pub client: ApiClient,
    pub secret: String,
}

pub const MAX_GRACE: Duration = Duration::days(7);

fn joined(scopes: &BTreeSet<Scope>) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Scopes named in input: each must exist and be held by the creator, who cannot hand out
/// more than it has.
fn granted_scopes(who: &Principal, raw: &[String]) -> v::Parsed<BTreeSet<Scope>> {
    if raw.is_empty() {
        return Err(FieldViolation::new(
            &["scopes"],
            ViolationCode::Required,
            "name at least one scope",
        ));
    }
    let mut out = BTreeSet::new();
    for (i, name) in raw.iter().enumerate() {
        let scope: Scope = name.trim().parse().map_err(|()| {
            FieldViolation::new(
                &["scopes"],
                ViolationCode::Invalid,
                format!("unknown scope `{name}`"),
            )
            .with_index(i)
        })?;
        if !who.has(scope) {
            return Err(FieldViolation::new(
                &["scopes"],
                ViolationCode::Invalid,
                format!("you cannot grant `{name}`: your token does not hold it"),
            )
            .with_index(i));
        }
        out.insert(scope);
    }
    Ok(out)
}

pub async fn create(t: &Tenant, name: &str, scopes: &[String]) -> Result<IssuedSecret> {
    let who = t.who();
    let mut errs = Violations::default();
    let name = errs.take(v::required_text("name", name, 100));
    let scopes = errs.take(granted_scopes(who, scopes));
    errs.finish()?;
    let secret = secrets::new_secret();
    let hash = secrets::hash(&secret).await?;
    let at = now();
    let model = t
        .stamp(api_clients::ActiveModel {
            id: Set(new_id(IdKind::ApiClient)),
            name: Set(name),
            scopes: Set(joined(&scopes)),
            secret_hash: Set(hash),
            previous_secret_hash: Set(None),
            previous_secret_expires_at: Set(None),
            created_by: Set(who.sub.clone()),
            created_at: Set(at),
            secret_rotated_at: Set(at),
            revoked_at: Set(None),
            ..Default::default()
        })
        .insert(t.db())
        .await?;
    Ok(IssuedSecret {
        client: ApiClient::from(&model),
        secret,
    })
}

pub async fn list(t: &Tenant) -> Result<Vec<ApiClient>> {
    let rows = t
        .find::<api_clients::Entity>()
        .order_by_asc(api_clients::Column::Id)
        .all(t.db())
        .await?;
    Ok(rows.iter().map(ApiClient::from).collect())
}

/// One of the tenant's clients, revoked or not.
pub async fn get(t: &Tenant, id: &str) -> Result<Option<ApiClient>> {
    let row = t
        .find::<api_clients::Entity>()
        .filter(api_clients::Column::Id.eq(id))
        .one(t.db())
        .await?;
    Ok(row.as_ref().map(ApiClient::from))
}

async fn live(t: &Tenant, id: &str) -> Result<api_clients::Model> {
    t.find::<api_clients::Entity>()
        .filter(api_clients::Column::Id.eq(id))
        .filter(api_clients::Column::RevokedAt.is_null())
        .one(t.db())
        .await?
        .ok_or(Error::NotFound)
}

/// A new secret; the current one keeps working for `grace` (at most a week).
pub async fn rotate_secret(t: &Tenant, id: &str, grace: Duration) -> Result<IssuedSecret> {
    if grace < Duration::zero() || grace > MAX_GRACE {
        return Err(Error::invalid(
            &["gracePeriodSeconds"],
            ViolationCode::Invalid,
            "must be between 0 and 604800 (a week)",
        ));
    }
    let current = live(t, id).await?;
    let secret = secrets::new_secret();
    let hash = secrets::hash(&secret).await?;
    let at = now();
    let mut row: api_clients::ActiveModel = current.clone().into();
    row.previous_secret_hash = Set(Some(current.secret_hash));
    row.previous_secret_expires_at = Set(Some(at + grace));
    row.secret_hash = Set(hash);
    row.secret_rotated_at = Set(at);
    let model = row.update(t.db()).await?;
    Ok(IssuedSecret {
        client: ApiClient::from(&model),
        secret,
    })
}

pub async fn revoke(t: &Tenant, id: &str) -> Result<ApiClient> {
    let current = live(t, id).await?;
    let mut row: api_clients::ActiveModel = current.into();
    row.revoked_at = Set(Some(now()));
    let model = row.update(t.db()).await?;
    Ok(ApiClient::from(&model))
}

/// The live client whose id and secret these are, or `None`: unknown, revoked and wrong
/// secret are one answer, so a caller cannot probe which client ids exist.
pub async fn authenticate(
    store: &Store,
    client_id: &str,
    secret: &str,
) -> Result<Option<ApiClient>> {
    // A client id names its tenant: this read precedes any tenant.
    let row = store
        .cross_tenant()
        .find_in_every_tenant::<api_clients::Entity>()
        .filter(api_clients::Column::Id.eq(client_id))
        .filter(api_clients::Column::RevokedAt.is_null())
        .one(store.cross_tenant().conn())
        .await?;
    let Some(row) = row else {
        // Spend the same time as a real check, so timing does not reveal unknown ids.
        secrets::burn(secret).await;
        return Ok(None);
    };
    if verify_secret(secret, &row.secret_hash).await {
        return Ok(Some(ApiClient::from(&row)));
    }
    let in_grace = row
        .previous_secret_expires_at
        .is_some_and(|until| until > now());
    if in_grace
        && let Some(previous) = &row.previous_secret_hash
        && verify_secret(secret, previous).await
    {
        return Ok(Some(ApiClient::from(&row)));
    }
    Ok(None)
}

/// Records a token as revoked until it would have expired anyway.
pub async fn revoke_token(
    store: &Store,
    jti: &str,
    client_id: &str,
    expires_at: DateTime<Utc>,
) -> Result<()> {
    let row = revoked_tokens::ActiveModel {
        jti: Set(jti.to_owned()),
        client_id: Set(client_id.to_owned()),
        expires_at: Set(expires_at),
        revoked_at: Set(now()),
    };
    revoked_tokens::Entity::insert(row)
        .on_conflict(
            OnConflict::column(revoked_tokens::Column::Jti)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(store.cross_tenant().conn())
        .await?;
    Ok(())
}

/// Forgets revocations of tokens that have expired anyway (and are past the largest clock
/// leeway a verifier allows): nobody can use them any more, so the list stays as short as
/// the tokens still alive.
pub async fn prune_revoked_tokens(conn: &impl sea_orm::ConnectionTrait) -> Result<u64> {
    let leeway = Duration::seconds(i64::try_from(crate::auth::MAX_LEEWAY_SECS).unwrap_or(300));
    let done = revoked_tokens::Entity::delete_many()
        .filter(revoked_tokens::Column::ExpiresAt.lt(now() - leeway))
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

/// Tokens and clients revoked recently, for ending connections that hold them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Revoked {
    /// `jti`s of revoked tokens.
    pub tokens: BTreeSet<String>,
    /// Ids of revoked clients (every token they hold is revoked with them).
    pub clients: BTreeSet<String>,
}

impl Revoked {
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty() && self.clients.is_empty()
    }

    /// Whether a token (its `jti`, issued to `client_id`) is among these.
    pub fn covers(&self, jti: &str, client_id: &str) -> bool {
        self.tokens.contains(jti) || self.clients.contains(client_id)
    }
}

/// What was revoked at or after `since`, on any instance. A cross-tenant read: it names
/// only ids, which the caller compares with the tokens it holds.
pub async fn revoked_since(
    conn: &impl sea_orm::ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Revoked> {
    use sea_orm::QuerySelect;
    let tokens: Vec<String> = revoked_tokens::Entity::find()
        .select_only()
        .column(revoked_tokens::Column::Jti)
        .filter(revoked_tokens::Column::RevokedAt.gte(since))
        .into_tuple()
        .all(conn)
        .await?;
    let clients: Vec<String> = CrossTenant::on(conn)
        .find_in_every_tenant::<api_clients::Entity>()
        .select_only()
        .column(api_clients::Column::Id)
        .filter(api_clients::Column::RevokedAt.gte(since))
        .into_tuple()
        .all(conn)
        .await?;
    Ok(Revoked {
        tokens: tokens.into_iter().collect(),
        clients: clients.into_iter().collect(),
    })
}

/// Whether a token issued to an API client may still be used: neither the token nor the
/// client was revoked.
pub async fn token_is_live(store: &Store, jti: &str, client_id: &str) -> Result<bool> {
    let every = store.cross_tenant();
    if revoked_tokens::Entity::find_by_id(jti.to_owned())
        .one(every.conn())
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let client = every
        .find_in_every_tenant::<api_clients::Entity>()
        .filter(api_clients::Column::Id.eq(client_id))
        .filter(api_clients::Column::RevokedAt.is_null())
        .one(every.conn())
        .await?;
    Ok(client.is_some())
}
