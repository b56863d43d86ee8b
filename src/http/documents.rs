//! Which document a request runs: its `query`, or a persisted document named by id —
//! Apollo's automatic persisted queries (`extensions.persistedQuery.sha256Hash`) and the
//! GraphQL-over-HTTP persisted documents draft (`documentId`). In trusted-documents mode
//! only documents an operator added run, whether sent by id or in full.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::Value;

use super::error::HttpError;
use crate::config::TrustedDocuments;
use crate::domain::Store;
use crate::domain::Tenant;
use crate::domain::documents::{MAX_REGISTERED_BYTES, id_of, is_valid_id};
use crate::graphql::codes;

/// Bytes of document text kept in memory (the database keeps them all).
const CACHE_BYTES: u64 = 32 * 1024 * 1024;

/// How long a trusted document's text is taken from memory before it is read again: an
/// operator may point a manifest id at new text (a registered document's id is the hash of
/// its text, which never changes).
const TRUSTED_FRESH: Duration = Duration::from_secs(60);

/// Whose document: every tenant's (trusted, `""`) or one tenant's (registered).
type CacheKey = (String, String);

#[derive(Clone)]
struct Cached {
    body: Arc<str>,
    at: Instant,
}

#[derive(Clone)]
struct ByLength;

impl quick_cache::Weighter<CacheKey, Cached> for ByLength {
    fn weight(&self, key: &CacheKey, doc: &Cached) -> u64 {
        (key.0.len() + key.1.len() + doc.body.len()) as u64
    }
}

#[derive(Clone)]
pub struct Documents {
    store: Store,
    mode: TrustedDocuments,
    cache: Arc<quick_cache::sync::Cache<CacheKey, Cached, ByLength>>,
}

/// What a request names: its text, an id, or both.
pub struct Named<'a> {
    pub query: Option<String>,
    pub extensions: Option<&'a Value>,
    pub document_id: Option<&'a str>,
}

/// The document to run, and the id to keep it under (for the caller's tenant) once it has
/// run well.
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
    if let Some(pq) = named
        .extensions
        .and_then(|e| e.get("persistedQuery"))
        .filter(|pq| !pq.is_null())
    {
        if pq.get("version").and_then(Value::as_f64) != Some(1.0) {
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

    fn unavailable(err: crate::domain::Error) -> DocumentError {
        tracing::error!(error = %err, "reading a persisted document failed");
        DocumentError::Unavailable
    }

    /// A trusted document's text.
    async fn trusted(&self, id: &str) -> Result<Option<Arc<str>>, DocumentError> {
        let key = (String::new(), id.to_owned());
        if let Some(hit) = self.cache.get(&key)
            && hit.at.elapsed() < TRUSTED_FRESH
        {
            return Ok(Some(hit.body));
        }
        let found = self
            .store
            .trusted_document(id)
            .await
            .map_err(Self::unavailable)?;
        match &found {
            Some(body) => self.remember(key, body.clone()),
            None => {
                self.cache.remove(&key);
            }
        }
        Ok(found)
    }

    /// A document the tenant's clients registered.
    async fn registered(
        &self,
        tenant: &Tenant,
        id: &str,
    ) -> Result<Option<Arc<str>>, DocumentError> {
        let key = (tenant.org().as_str().to_owned(), id.to_owned());
        if let Some(hit) = self.cache.get(&key) {
            return Ok(Some(hit.body));
        }
        let found = tenant
            .registered_document(id)
            .await
            .map_err(Self::unavailable)?;
        if let Some(body) = &found {
            self.remember(key, body.clone());
        }
        Ok(found)
    }

    fn remember(&self, key: CacheKey, body: Arc<str>) {
        self.cache.insert(
            key,
            Cached {
                body,
                at: Instant::now(),
            },
        );
    }

    /// The document a request runs. `tenant` is the caller's (none for an anonymous one,
    /// who runs trusted documents by id, or text).
    pub async fn resolve(
        &self,
        named: Named<'_>,
        tenant: Option<&Tenant>,
    ) -> Result<Resolved, DocumentError> {
        let id = requested_id(&named)?;
        let query = named.query.filter(|q| !q.trim().is_empty());
        let only = self.mode == TrustedDocuments::Only;
        match (query, id) {
            (Some(query), None) => {
                if only
                    && self
                        .trusted(&id_of(&query))
                        .await?
                        .is_none_or(|body| *body != *query)
                {
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
                    return match self.trusted(id.as_str()).await? {
                        Some(body) if *body == *query => Ok(Resolved {
                            query,
                            register: None,
                        }),
                        _ => Err(DocumentError::NotTrusted),
                    };
                }
                // Only a checked hash is kept (a manifest id is the operator's to give), only
                // for a caller with a tenant, and only a document of a sensible size.
                let register = match (id, tenant) {
                    (Id::Sha256(hash), Some(tenant))
                        if query.len() <= MAX_REGISTERED_BYTES
                            && !self.cache.contains_key(&(
                                tenant.org().as_str().to_owned(),
                                hash.clone(),
                            )) =>
                    {
                        Some(hash)
                    }
                    _ => None,
                };
                Ok(Resolved { query, register })
            }
            (None, Some(id)) => {
                if let Some(body) = self.trusted(id.as_str()).await? {
                    return Ok(Resolved {
                        query: body.to_string(),
                        register: None,
                    });
                }
                if only {
                    return Err(DocumentError::NotTrusted);
                }
                let registered = match tenant {
                    Some(tenant) => self.registered(tenant, id.as_str()).await?,
                    None => None,
                };
                registered
                    .map(|body| Resolved {
                        query: body.to_string(),
                        register: None,
                    })
                    .ok_or(DocumentError::NotFound)
            }
            (None, None) => Err(DocumentError::NoQuery),
        }
    }

    /// Keeps a document that ran well for the tenant, under its checked hash. A failure
    /// only costs the client a resend, so it is logged, not answered.
    pub async fn register(&self, tenant: &Tenant, id: String, body: &str) {
        match tenant.register_document(&id, body).await {
            Ok(true) => self.remember((tenant.org().as_str().to_owned(), id), body.into()),
            Ok(false) => tracing::debug!("persisted document not kept: the tenant has its fill"),
            Err(err) => tracing::warn!(error = %err, "keeping a persisted document failed"),
        }
    }
}
