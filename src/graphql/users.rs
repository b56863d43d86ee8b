//! The `User` type: owners and authors.

use async_graphql::{ID, Object};

use crate::auth::Scope;
use crate::domain::users::User;
use crate::graphql::permissions::{all_of, requires_scopes};

pub struct UserNode(pub User);

#[Object(name = "User")]
impl UserNode {
    pub async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    /// The token subject this user acts as.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }

    #[graphql(directive = requires_scopes::apply(all_of(&[Scope::PiiRead])))]
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }
}
