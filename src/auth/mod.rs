//! Who is calling: bearer-token verification, the `Principal` it yields, scopes, and token
//! minting for development. A leaf: it knows nothing of HTTP, GraphQL or the database.

pub mod dev;
mod jwt;
mod principal;
mod scope;

pub use jwt::{Claims, TokenError, TokenIssuer, TokenVerifier};
pub use principal::Principal;
pub use scope::Scope;
