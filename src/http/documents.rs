//! Which document a request runs: its `query`, or a persisted document named by id —
//! Apollo's automatic persisted queries (`extensions.persistedQuery.sha256Hash`) and the
//! GraphQL-over-HTTP persisted documents draft (`documentId`). In trusted-documents mode
//! only documents an operator added run, whether sent by id or in full.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::Value;

use super::error::HttpError;
use crate::config::TrustedDocuments;
use crate::domain::Store;
use crate::domain::documents::{Document, MAX_REGISTERED_BYTES, id_of, is_valid_id};
use crate::graphql::codes;

/// Bytes of document text kept in memory (the database keeps them all).
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<String, Document> for ByLength {
    fn weight(&self, id: &String, doc: &Document) -> u64 {
        (id.len() + doc.body.len()) as u64
    }
}

#[derive(Clone)]
pub struct Documents {
    store: Store,
    mode: TrustedDocuments,
    cache: Arc<quick_cache::sync::Cache<String, Document, ByLength>>,
}

/// What a request names: its text, an id, or both.
pub struct Named<'a> {
    pub query: Option<String>,
    pub extensions: Option<&'a Value>,
    pub document_id: Option<&'a str>,
}

/// The document to run, and the id to keep it under once it has run well.
pub struct Resolved {
    pub query: String,
    pub register: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// Apollo's clients look for this message (and code) to send the full text next.
    #[error("PersistedQueryNotFound")]
    NotFound,
    #[error("provided sha does not match query")]
    HashMismatch,
    #[error("`persistedQuery.version` must be 1")]
    Version,
    #[error("`persistedQuery.sha256Hash` must be 64 hexadecimal digits (or a manifest's id)")]
    BadHash,
    #[error(
        "`documentId` must be `sha256:` and 64 hexadecimal digits, or a manifest id of at most 128 letters, digits, `_`, `-`, `.` and `:`"
    )]
    BadDocumentId,
    #[error(
        "only trusted documents run on this server, and this one is not among them (an operator adds them with `crm documents add`)"
    )]
    NotTrusted,
    #[error("the request has no `query`")]
    NoQuery,
    #[error("try again later")]
    Unavailable,
}

impl From<DocumentError> for HttpError {
    fn from(err: DocumentError) -> Self {
        let (status, code) = match err {
            // 200: Apollo's link gives up on persisted queries altogether after a 400.
            DocumentError::NotFound => (StatusCode::OK, codes::PERSISTED_QUERY_NOT_FOUND),
            DocumentError::NotTrusted => {
                (StatusCode::BAD_REQUEST, codes::PERSISTED_QUERY_NOT_IN_LIST)
            }
            DocumentError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, codes::INTERNAL),
            DocumentError::HashMismatch
            | DocumentError::Version
            | DocumentError::BadHash
            | DocumentError::BadDocumentId
            | DocumentError::NoQuery => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
        };
        HttpError::new(status, code, err.to_string())
    }
}

/// An id as the request gave it: a SHA-256 of the text (checkable), or a manifest's own.
enum Id {
    Sha256(String),
    Manifest(String),
}

impl Id {
    fn as_str(&self) -> &str {
        match self {
            Id::Sha256(id) | Id::Manifest(id) => id,
        }
    }
}

fn sha256_hex(value: &str) -> Option<String> {
    (value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| value.to_ascii_lowercase())
}

fn requested_id(named: &Named<'_>) -> Result<Option<Id>, DocumentError> {
    if let Some(pq) = named.extensions.and_then(|e| e.get("persistedQuery")) {
        if pq.get("version").and_then(Value::as_i64) != Some(1) {
            return Err(DocumentError::Version);
        }
        let hash = pq
            .get("sha256Hash")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // A manifest may give its operations ids of its own, which its link sends here.
        return match sha256_hex(hash) {
            Some(hash) => Ok(Some(Id::Sha256(hash))),
            None if is_valid_id(hash) => Ok(Some(Id::Manifest(hash.to_owned()))),
            None => Err(DocumentError::BadHash),
        };
    }
    let Some(id) = named.document_id else {
        return Ok(None);
    };
    if let Some(hash) = id.strip_prefix("sha256:") {
        return sha256_hex(hash)
            .map(|h| Some(Id::Sha256(h)))
            .ok_or(DocumentError::BadDocumentId);
    }
    if is_valid_id(id) {
        Ok(Some(Id::Manifest(id.to_owned())))
    } else {
        Err(DocumentError::BadDocumentId)
    }
}

impl Documents {
    pub fn new(store: Store, mode: TrustedDocuments) -> Self {
        Self {
            store,
            mode,
            cache: Arc::new(quick_cache::sync::Cache::with_weighter(
                4096,
                CACHE_BYTES,
                ByLength,
            )),
        }
    }

    async fn find(&self, id: &str) -> Result<Option<Document>, DocumentError> {
        if let Some(doc) = self.cache.get(id) {
            return Ok(Some(doc));
        }
        let found = self.store.document(id).await.map_err(|err| {
            tracing::error!(error = %err, "reading a persisted document failed");
            DocumentError::Unavailable
        })?;
        if let Some(doc) = &found {
            self.cache.insert(id.to_owned(), doc.clone());
        }
        Ok(found)
    }

    async fn trusted(&self, id: &str) -> Result<bool, DocumentError> {
        Ok(self.find(id).await?.is_some_and(|doc| doc.trusted))
    }

    pub async fn resolve(&self, named: Named<'_>) -> Result<Resolved, DocumentError> {
        let id = requested_id(&named)?;
        let query = named.query.filter(|q| !q.trim().is_empty());
        let only = self.mode == TrustedDocuments::Only;
        match (query, id) {
            (Some(query), None) => {
                if only && !self.trusted(&id_of(&query)).await? {
                    return Err(DocumentError::NotTrusted);
                }
                Ok(Resolved {
                    query,
                    register: None,
                })
            }
            (Some(query), Some(id)) => {
                if let Id::Sha256(hash) = &id
                    && *hash != id_of(&query)
                {
                    return Err(DocumentError::HashMismatch);
                }
                if only {
                    // The text must be the trusted document's, whatever id names it.
                    return match self.find(id.as_str()).await? {
                        Some(doc) if doc.trusted && *doc.body == *query => Ok(Resolved {
                            query,
                            register: None,
                        }),
                        _ => Err(DocumentError::NotTrusted),
                    };
                }
                // Only a checked hash is kept (a manifest id is the operator's to give), and
                // only a document of a sensible size.
                let register = match id {
                    Id::Sha256(hash)
                        if query.len() <= MAX_REGISTERED_BYTES
                            && self.cache.get(&hash).is_none() =>
                    {
                        Some(hash)
                    }
                    _ => None,
                };
                Ok(Resolved { query, register })
            }
            (None, Some(id)) => match self.find(id.as_str()).await? {
                Some(doc) if doc.trusted || !only => Ok(Resolved {
                    query: doc.body.to_string(),
                    register: None,
                }),
                _ if only => Err(DocumentError::NotTrusted),
                _ => Err(DocumentError::NotFound),
            },
            (None, None) => Err(DocumentError::NoQuery),
        }
    }

    /// Keeps a document that ran well under its checked hash. A failure only costs the
    /// client a resend, so it is logged, not answered.
    pub async fn register(&self, id: String, body: &str) {
        match self.store.register_document(&id, body).await {
            Ok(()) => self.cache.insert(
                id,
                Document {
                    body: body.into(),
                    trusted: false,
                },
            ),
            Err(err) => tracing::warn!(error = %err, "keeping a persisted document failed"),
        }
    }
}
