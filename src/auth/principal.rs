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
    /// Whoever runs a command against the database holds it, and so acts in the organization
    /// it names with every scope, as `sub` (the author of its writes).
    pub fn operator(sub: &str, org: &str) -> Self {
        Self {
            sub: sub.to_owned(),
            org: org.to_owned(),
            scopes: Scope::ALL.into_iter().collect(),
        }
    }

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
