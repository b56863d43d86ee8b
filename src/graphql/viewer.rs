//! `viewer`: who the token says the caller is.

use async_graphql::{Context, Object, Result, SimpleObject};

use crate::graphql::context::principal;

#[derive(SimpleObject)]
pub struct Viewer {
    /// The token's `sub`.
    pub subject: String,
    /// The organization every read and write is confined to (the token's `org`).
    pub org: String,
    /// The scopes in effect, sorted.
    pub scopes: Vec<String>,
}

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<Viewer>> {
        let who = principal(ctx)?;
        Ok(Some(Viewer {
            subject: who.sub.clone(),
            org: who.org.clone(),
            scopes: who.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
        }))
    }
}
