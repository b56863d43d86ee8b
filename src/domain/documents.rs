//! Persisted documents: GraphQL documents kept by id, so a client can send the id instead
//! of the text. A tenant's clients register their own (automatic persisted queries), which
//! only that tenant runs by id; an operator adds trusted ones (`crm documents add`) for every
//! tenant, and in trusted-documents mode they are all that runs. Registered documents are
//! bounded in size, number per tenant and age, so no client can fill the disk.

use std::sync::Arc;

use entity::persisted_documents;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use super::{Result, Store, Tenant, now};

/// The `org_id` of trusted documents: they belong to every tenant.
const EVERY_TENANT: &str = "";

/// How long a document a client registered is kept: a client whose document was pruned
/// gets `PERSISTED_QUERY_NOT_FOUND` and sends it again, so keeping them is only a saving.
pub const REGISTERED_KEPT_DAYS: i64 = 7;

/// The largest document a client may register (larger ones run but are not kept).
pub const MAX_REGISTERED_BYTES: usize = 32 * 1024;

/// The most documents one tenant's clients may have registered at once (past it, documents
/// run but are not kept until older ones expire).
pub const MAX_REGISTERED_PER_TENANT: u64 = 1_000;

/// The id of a document: the SHA-256 of its text, in lower-case hex (what Apollo's
/// persisted-query link and the GraphQL-over-HTTP persisted documents draft send).
pub fn id_of(body: &str) -> String {
    hex::encode(Sha256::digest(body.as_bytes()))
}

/// An id a manifest may give a document: at most 128 letters, digits, `_`, `-`, `.`, `:`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

async fn body_of(
    conn: &impl sea_orm::ConnectionTrait,
    org: &str,
    id: &str,
) -> Result<Option<Arc<str>>> {
    let row = persisted_documents::Entity::find_by_id((org.to_owned(), id.to_owned()))
        .one(conn)
        .await?;
    Ok(row.map(|row| row.body.into()))
}

impl Store {
    /// The text of a trusted document.
    pub async fn trusted_document(&self, id: &str) -> Result<Option<Arc<str>>> {
        body_of(self.db(), EVERY_TENANT, id).await
    }

    /// Adds operator documents as trusted, under their id and, when that is a manifest's
    /// own, also under the SHA-256 of their text (so the text sent in full is found too).
    pub async fn trust_documents(&self, documents: &[(String, String)]) -> Result<()> {
        let txn = self.write().await?;
        for (id, body) in documents {
            let hash = id_of(body);
            let ids = if *id == hash {
                vec![hash]
            } else {
                vec![id.clone(), hash]
            };
            for id in ids {
                persisted_documents::Entity::insert(row(EVERY_TENANT, &id, body))
                    .on_conflict(
                        OnConflict::columns([
                            persisted_documents::Column::OrgId,
                            persisted_documents::Column::Id,
                        ])
                        .update_column(persisted_documents::Column::Body)
                        .to_owned(),
                    )
                    .exec_without_returning(&*txn)
                    .await?;
            }
        }
        self.commit(txn).await?;
        Ok(())
    }
}

impl Tenant {
    /// The text of a document this tenant's clients registered.
    pub async fn registered_document(&self, id: &str) -> Result<Option<Arc<str>>> {
        body_of(self.db(), self.org().as_str(), id).await
    }

    /// Keeps a document a client sent with its checked hash, unless the tenant has as many
    /// as it may keep; whether it is kept.
    pub async fn register_document(&self, id: &str, body: &str) -> Result<bool> {
        if body.len() > MAX_REGISTERED_BYTES {
            return Ok(false);
        }
        let kept = self
            .find::<persisted_documents::Entity>()
            .count(self.db())
            .await?;
        if kept >= MAX_REGISTERED_PER_TENANT {
            return Ok(false);
        }
        persisted_documents::Entity::insert(self.stamp(row(EVERY_TENANT, id, body)))
            .on_conflict(
                OnConflict::columns([
                    persisted_documents::Column::OrgId,
                    persisted_documents::Column::Id,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(self.db())
            .await?;
        Ok(true)
    }
}

/// Forgets documents clients registered more than `REGISTERED_KEPT_DAYS` ago, in every
/// tenant (trusted ones stay until an operator removes them).
pub async fn prune_registered(conn: &impl sea_orm::ConnectionTrait) -> Result<u64> {
    let done = persisted_documents::Entity::delete_many()
        .filter(persisted_documents::Column::OrgId.ne(EVERY_TENANT))
        .filter(
            persisted_documents::Column::CreatedAt
                .lt(now() - chrono::Duration::days(REGISTERED_KEPT_DAYS)),
        )
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

fn row(org: &str, id: &str, body: &str) -> persisted_documents::ActiveModel {
    persisted_documents::ActiveModel {
        org_id: Set(org.to_owned()),
        id: Set(id.to_owned()),
        body: Set(body.to_owned()),
        created_at: Set(now()),
    }
}
