//! Documents parsed before, by their text. Clients send the same few documents over and
//! over; parsing one again (async-graphql's pest grammar) cost 8% of the CPU of a point read
//! and more for longer documents, where copying the parsed document costs a fraction of
//! that. Only a document that passed the nesting scan and parsed is kept, and what is kept
//! is bounded in number and in size. Beside it is kept whether it has passed async-graphql's
//! full validation (see `graphql::validation`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::parser::types::ExecutableDocument;

/// The most documents kept.
const DOCUMENTS: usize = 2_048;
/// The longest document kept: longer ones are rare, and parsed each time.
const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// The weight of all documents kept, a parsed document counting ten times its text.
const WEIGHT: u64 = 32 * 1024 * 1024;

#[derive(Clone)]
struct BySize;

impl quick_cache::Weighter<String, Arc<Parsed>> for BySize {
    fn weight(&self, text: &String, _: &Arc<Parsed>) -> u64 {
        (text.len() as u64).saturating_mul(10).max(1)
    }
}

pub struct ParsedDocuments(quick_cache::sync::Cache<String, Arc<Parsed>, BySize>);

/// A document as parsed, and whether it has been found valid.
pub struct Parsed {
    pub doc: Arc<ExecutableDocument>,
    /// Whether it selects some response key twice in one selection set, so that no answer
    /// may be plain (`graphql::document::merges_fields`).
    pub merges_fields: bool,
    validated: AtomicBool,
}

impl Parsed {
    pub fn new(doc: ExecutableDocument) -> Self {
        Self {
            merges_fields: crate::graphql::document::merges_fields(&doc),
            doc: Arc::new(doc),
            validated: AtomicBool::new(false),
        }
    }

    /// Whether a request with this document has passed every validation rule.
    pub fn validated(&self) -> bool {
        self.validated.load(Ordering::Relaxed)
    }

    pub fn mark_validated(&self) {
        self.validated.store(true, Ordering::Relaxed);
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self(quick_cache::sync::Cache::with_weighter(
            DOCUMENTS, WEIGHT, BySize,
        ))
    }
}

impl ParsedDocuments {
    /// The document `text` parsed into, if it was kept.
    pub fn get(&self, text: &str) -> Option<Arc<Parsed>> {
        self.0.get(text)
    }

    pub fn keep(&self, text: &str, doc: &Arc<Parsed>) {
        if text.len() <= MAX_DOCUMENT_BYTES {
            self.0.insert(text.to_owned(), Arc::clone(doc));
        }
    }
}
