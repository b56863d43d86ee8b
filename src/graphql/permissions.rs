//! Field permissions: declared once beside each field as `@requiresScopes(scopes: [[…]])`
//! (printed in the SDL, so clients and schema tooling see them), and enforced for every
//! field of every request by one extension, before the resolver runs. Aliases, fragments
//! and `node` lookups change nothing: the check is on the type and field being resolved.
//!
//! `scopes` is a list of alternatives, each a list of scopes that must all be held
//! (Apollo's semantics): `[["a", "b"], ["c"]]` means a and b, or c.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
use async_graphql::{PathSegment, ServerError, ServerResult, TypeDirective, Value};

use super::context::RequestAuth;
use super::errors::{ApiError, codes};
use crate::auth::{Principal, Scope};

#[TypeDirective(name = "requiresScopes", location = "FieldDefinition")]
pub fn requires_scopes(scopes: Vec<Vec<String>>) {}

/// The argument of `@requiresScopes` for a field that needs every scope in `all`.
pub fn all_of(all: &[Scope]) -> Vec<Vec<String>> {
    vec![all.iter().map(|s| s.as_str().to_owned()).collect()]
}

/// (type, field) -> alternatives of scope sets.
pub type PermissionTable = HashMap<(String, String), Vec<Vec<Scope>>>;

/// Reads the permission of every field from the schema's own SDL, so the table can never
/// disagree with what clients are shown.
pub fn table_from_sdl(sdl: &str) -> PermissionTable {
    let mut table = PermissionTable::new();
    let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
        return table;
    };
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let fields = match &ty.kind {
            TypeKind::Object(o) => &o.fields,
            TypeKind::Interface(i) => &i.fields,
            _ => continue,
        };
        for field in fields {
            for directive in &field.node.directives {
                if directive.node.name.node != "requiresScopes" {
                    continue;
                }
                let Some(arg) = directive.node.get_argument("scopes") else {
                    continue;
                };
                let alternatives = parse_alternatives(&arg.node);
                table.insert(
                    (ty.name.node.to_string(), field.node.name.node.to_string()),
                    alternatives,
                );
            }
        }
    }
    table
}

fn parse_alternatives(value: &Value) -> Vec<Vec<Scope>> {
    let names = |v: &Value| -> Vec<Scope> {
        match v {
            Value::List(items) => items
                .iter()
                .filter_map(|s| match s {
                    Value::String(s) => s.parse().ok(),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    };
    match value {
        Value::List(alternatives) => alternatives.iter().map(names).collect(),
        _ => Vec::new(),
    }
}

/// Whether `who` satisfies one of the alternatives.
pub fn allows(who: &Principal, alternatives: &[Vec<Scope>]) -> bool {
    alternatives
        .iter()
        .any(|all| all.iter().all(|s| who.has(*s)))
}

pub struct ScopeEnforcement {
    table: Arc<PermissionTable>,
}

impl ScopeEnforcement {
    pub fn new(table: PermissionTable) -> Self {
        Self {
            table: Arc::new(table),
        }
    }
}

impl ExtensionFactory for ScopeEnforcement {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Enforcer {
            table: self.table.clone(),
        })
    }
}

struct Enforcer {
    table: Arc<PermissionTable>,
}

fn path_of(info: &ResolveInfo<'_>) -> Vec<PathSegment> {
    path_segments(info.path_node)
}

/// The response path of a field being resolved.
pub fn path_segments(node: &async_graphql::QueryPathNode<'_>) -> Vec<PathSegment> {
    let mut path: Vec<PathSegment> = std::iter::once(node)
        .chain(node.parents())
        .map(|n| match n.segment {
            async_graphql::QueryPathSegment::Index(i) => PathSegment::Index(i),
            async_graphql::QueryPathSegment::Name(name) => PathSegment::Field(name.to_owned()),
        })
        .collect();
    path.reverse();
    path
}

fn refusal(info: &ResolveInfo<'_>, err: ApiError) -> ServerError {
    let code = match err {
        ApiError::Unauthenticated => codes::UNAUTHENTICATED,
        ApiError::Forbidden(_) => codes::FORBIDDEN,
    };
    let mut error = ServerError::new(err.to_string(), None).with_path(path_of(info));
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

#[async_trait::async_trait]
impl Extension for Enforcer {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if let Some(alternatives) = self
            .table
            .get(&(info.parent_type.to_owned(), info.name.to_owned()))
        {
            let who = ctx
                .data_opt::<RequestAuth>()
                .and_then(|auth| auth.0.as_ref());
            match who {
                None => return Err(refusal(&info, ApiError::Unauthenticated)),
                Some(who) if !allows(who, alternatives) => {
                    let missing = alternatives
                        .first()
                        .and_then(|all| all.iter().find(|s| !who.has(**s)).copied())
                        .unwrap_or(Scope::CustomersRead);
                    return Err(refusal(&info, ApiError::Forbidden(missing)));
                }
                Some(_) => {}
            }
        }
        next.run(ctx, info).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_holds_what_the_sdl_declares() {
        let table = table_from_sdl(&crate::graphql::sdl());
        let get = |t: &str, f: &str| table.get(&(t.to_owned(), f.to_owned())).cloned();
        assert_eq!(get("Customer", "email"), Some(vec![vec![Scope::PiiRead]]));
        assert_eq!(
            get("Query", "customers"),
            Some(vec![vec![Scope::CustomersRead]])
        );
        assert_eq!(
            get("Mutation", "logActivity"),
            Some(vec![vec![Scope::ActivitiesWrite]])
        );
        assert_eq!(get("Customer", "name"), None);
    }
}
