//! What a resolver may know of its request: the caller, checked here and nowhere else.

use async_graphql::{Context, Result};

use super::errors::ApiError;
use crate::auth::Principal;
use crate::domain::{Store, Tenant};

/// The verified caller of the request, or `None` for an anonymous one.
#[derive(Clone, Debug, Default)]
pub struct RequestAuth(pub Option<Principal>);

/// The caller, or UNAUTHENTICATED.
pub fn principal<'a>(ctx: &Context<'a>) -> Result<&'a Principal> {
    ctx.data_opt::<RequestAuth>()
        .and_then(|auth| auth.0.as_ref())
        .ok_or_else(|| ApiError::Unauthenticated.into())
}

pub fn store<'a>(ctx: &Context<'a>) -> Result<&'a Store> {
    ctx.data::<Store>()
}

/// The caller's tenant, made once per request beside its loaders: the only way a resolver
/// reaches tenant data.
pub fn tenant<'a>(ctx: &Context<'a>) -> Result<&'a Tenant> {
    ctx.data_opt::<Tenant>()
        .ok_or_else(|| ApiError::Unauthenticated.into())
}
