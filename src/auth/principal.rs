use std::collections::BTreeSet;

use super::Scope;

/// The verified caller of one request: the subject, the tenant every read and write is
/// confined to, and the scopes granted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    pub org: String,
    pub scopes: BTreeSet<Scope>,
}

impl Principal {
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Scopes named in a space-separated claim; names this service does not know are
    /// ignored so that a shared identity provider can carry scopes for other audiences.
    pub fn parse_scopes(claim: &str) -> BTreeSet<Scope> {
        claim
            .split_ascii_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}
