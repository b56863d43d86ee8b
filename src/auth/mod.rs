//! Who is calling: bearer-token verification, the `Principal` it yields, scopes, and token
//! minting for development. A leaf: it knows nothing of HTTP, GraphQL or the database.

pub mod dev;
mod jwt;
pub mod keys;
mod principal;
mod scope;

pub use jwt::{
    Audience, Claims, MAX_LEEWAY_SECS, TokenError, TokenIssuer, TokenVerifier, Verified,
};
pub use principal::Principal;
pub use scope::Scope;
