//! Persisted documents: GraphQL documents kept by id, so a client can send the id instead
//! of the text. Clients register their own (automatic persisted queries); an operator adds
//! trusted ones (`crm documents add`), which are all that run in trusted-documents mode.
//! Documents belong to no tenant: an id is a hash of the text, so holding one means already
//! knowing the document.

use std::sync::Arc;

use entity::persisted_documents;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use sha2::{Digest, Sha256};

use super::{Result, Store, now};

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

#[derive(Clone, Debug)]
pub struct Document {
    pub body: Arc<str>,
    pub trusted: bool,
}

impl Store {
    pub async fn document(&self, id: &str) -> Result<Option<Document>> {
        let row = persisted_documents::Entity::find_by_id(id.to_owned())
            .one(self.db())
            .await?;
        Ok(row.map(|row| Document {
            body: row.body.into(),
            trusted: row.trusted,
        }))
    }

    /// Keeps a document a client sent with its id (checked by the caller); one already
    /// kept stays as it is.
    pub async fn register_document(&self, id: &str, body: &str) -> Result<()> {
        persisted_documents::Entity::insert(row(id, body, false))
            .on_conflict(
                OnConflict::column(persisted_documents::Column::Id)
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(self.db())
            .await?;
        Ok(())
    }

    /// Adds operator documents as trusted (a registered one with the same id becomes
    /// trusted; a manifest's id that names other text now names this one).
    pub async fn trust_documents(&self, documents: &[(String, String)]) -> Result<()> {
        let txn = self.write().await?;
        for (id, body) in documents {
            persisted_documents::Entity::insert(row(id, body, true))
                .on_conflict(
                    OnConflict::column(persisted_documents::Column::Id)
                        .update_columns([
                            persisted_documents::Column::Body,
                            persisted_documents::Column::Trusted,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(&*txn)
                .await?;
        }
        self.commit(txn).await?;
        Ok(())
    }
}

/// How long a document a client registered is kept: a client whose document was pruned
/// gets `PERSISTED_QUERY_NOT_FOUND` and sends it again, so keeping them is only a saving,
/// and what clients can make the server store stays bounded in time.
pub const REGISTERED_KEPT_DAYS: i64 = 7;

/// The largest document a client may register (larger ones run but are not kept).
pub const MAX_REGISTERED_BYTES: usize = 32 * 1024;

/// Forgets documents clients registered more than `REGISTERED_KEPT_DAYS` ago (trusted ones
/// stay until an operator removes them).
pub async fn prune_registered(conn: &impl sea_orm::ConnectionTrait) -> Result<u64> {
    let done = persisted_documents::Entity::delete_many()
        .filter(persisted_documents::Column::Trusted.eq(false))
        .filter(
            persisted_documents::Column::CreatedAt
                .lt(now() - chrono::Duration::days(REGISTERED_KEPT_DAYS)),
        )
        .exec(conn)
        .await?;
    Ok(done.rows_affected)
}

fn row(id: &str, body: &str, trusted: bool) -> persisted_documents::ActiveModel {
    persisted_documents::ActiveModel {
        id: Set(id.to_owned()),
        body: Set(body.to_owned()),
        trusted: Set(trusted),
        created_at: Set(now()),
    }
}
