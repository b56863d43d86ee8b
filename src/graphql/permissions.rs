//! Field permissions: declared once beside each field as `@requiresScopes(scopes: [[…]])`
//! (printed in the SDL, so clients and schema tooling see them), and enforced for every
//! field of every request by one extension, before the resolver runs. Aliases, fragments
//! and `node` lookups change nothing: the check is on the type and field being resolved.
//!
//! `scopes` is a list of alternatives, each a list of scopes that must all be held
//! (Apollo's semantics): `[["a", "b"], ["c"]]` means a and b, or c.

// The tables are keyed by the schema's own names and read for every field of every
// request; a hasher built for short trusted keys costs a fraction of the default one.
use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, OnceLock};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{InterfaceType, ObjectType, TypeKind, TypeSystemDefinition};
use async_graphql::{
    PathSegment, Request, ServerError, ServerResult, TypeDirective, Value, Variables,
};

use super::context::RequestAuth;
use super::errors::{ApiError, codes};
use crate::auth::{Principal, Scope};

#[TypeDirective(
    name = "requiresScopes",
    location = "FieldDefinition",
    location = "InputFieldDefinition"
)]
pub fn requires_scopes(scopes: Vec<Vec<String>>) {}

/// The argument of `@requiresScopes` for a field that needs every scope in `all`.
pub fn all_of(all: &[Scope]) -> Vec<Vec<String>> {
    vec![all.iter().map(|s| s.as_str().to_owned()).collect()]
}

/// Alternatives of scope sets: one of them must be held in full.
pub type Alternatives = Vec<Vec<Scope>>;

/// What `@requiresScopes` declares, read from the schema's own SDL so that enforcement can
/// never disagree with what clients are shown. An input field's scopes are those of reading
/// the value it compares with: filtering on `email` reveals `email` as surely as selecting
/// it does.
#[derive(Default)]
pub struct PermissionTable {
    /// type -> field -> alternatives, for object and input fields alike.
    fields: HashMap<String, HashMap<String, Alternatives>>,
    /// type -> field -> arguments `(name, input type)` whose values can reach a guarded
    /// input field; only fields with such arguments are listed.
    guarded_arguments: HashMap<String, HashMap<String, Vec<(String, String)>>>,
    /// Input types that can reach a guarded input field -> their fields' input types.
    guarded_inputs: HashMap<String, HashMap<String, String>>,
}

impl PermissionTable {
    /// Every scope that guards something, once each.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes: Vec<Scope> = self
            .fields
            .values()
            .flat_map(|fields| fields.values())
            .flatten()
            .flatten()
            .copied()
            .collect();
        scopes.sort_by_key(|s| s.as_str());
        scopes.dedup();
        scopes
    }

    pub fn get(&self, ty: &str, field: &str) -> Option<&Alternatives> {
        self.fields.get(ty)?.get(field)
    }

    /// Records the `@requiresScopes` of a field, if it has one.
    fn declare(
        &mut self,
        ty: &str,
        field: &str,
        directives: &[async_graphql::Positioned<async_graphql::parser::types::ConstDirective>],
    ) {
        if let Some(alternatives) = declared_scopes(directives) {
            self.fields
                .entry(ty.to_owned())
                .or_default()
                .insert(field.to_owned(), alternatives);
        }
    }

    fn guarded_arguments(&self, ty: &str, field: &str) -> Option<&Vec<(String, String)>> {
        self.guarded_arguments.get(ty)?.get(field)
    }
}

pub(super) fn named_type(ty: &async_graphql::parser::types::Type) -> &str {
    use async_graphql::parser::types::BaseType;
    let mut ty = ty;
    loop {
        match &ty.base {
            BaseType::Named(name) => return name.as_str(),
            BaseType::List(inner) => ty = inner,
        }
    }
}

fn declared_scopes(
    directives: &[async_graphql::Positioned<async_graphql::parser::types::ConstDirective>],
) -> Option<Alternatives> {
    directives
        .iter()
        .filter(|d| d.node.name.node == "requiresScopes")
        .find_map(|d| d.node.get_argument("scopes"))
        .map(|arg| parse_alternatives(&arg.node))
}

pub fn table_from_sdl(sdl: &str) -> PermissionTable {
    let mut table = PermissionTable::default();
    let Ok(doc) = async_graphql::parser::parse_schema(sdl) else {
        return table;
    };
    // (type, field, arguments) of every object field, and every input type's fields.
    let mut object_fields = Vec::new();
    let mut input_types: HashMap<String, HashMap<String, String>> = HashMap::default();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let ty = ty.node;
        let type_name = ty.name.node.to_string();
        match &ty.kind {
            TypeKind::Object(ObjectType { fields, .. })
            | TypeKind::Interface(InterfaceType { fields, .. }) => {
                for field in fields {
                    let field = &field.node;
                    table.declare(&type_name, &field.name.node, &field.directives);
                    let arguments: Vec<(String, String)> = field
                        .arguments
                        .iter()
                        .map(|a| {
                            (
                                a.node.name.node.to_string(),
                                named_type(&a.node.ty.node).to_owned(),
                            )
                        })
                        .collect();
                    object_fields.push((type_name.clone(), field.name.node.to_string(), arguments));
                }
            }
            TypeKind::InputObject(input) => {
                let mut fields = HashMap::default();
                for field in &input.fields {
                    let field = &field.node;
                    table.declare(&type_name, &field.name.node, &field.directives);
                    fields.insert(
                        field.name.node.to_string(),
                        named_type(&field.ty.node).to_owned(),
                    );
                }
                input_types.insert(type_name, fields);
            }
            _ => {}
        }
    }
    // The input types that reach a guarded field, directly or through other input types.
    let mut guarded: std::collections::HashSet<String> = input_types
        .keys()
        .filter(|name| table.fields.contains_key(*name))
        .cloned()
        .collect();
    loop {
        let before = guarded.len();
        for (name, fields) in &input_types {
            if fields.values().any(|ty| guarded.contains(ty)) {
                guarded.insert(name.clone());
            }
        }
        if guarded.len() == before {
            break;
        }
    }
    for (ty, field, arguments) in object_fields {
        let reaching: Vec<(String, String)> = arguments
            .into_iter()
            .filter(|(_, arg_type)| guarded.contains(arg_type))
            .collect();
        if !reaching.is_empty() {
            table
                .guarded_arguments
                .entry(ty)
                .or_default()
                .insert(field, reaching);
        }
    }
    table.guarded_inputs = input_types
        .into_iter()
        .filter(|(name, _)| guarded.contains(name))
        .collect();
    table
}

fn parse_alternatives(value: &Value) -> Alternatives {
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

/// Whether the caller of this request may read `ty.field` (for rules that widen what a
/// resolver does, such as what `search` matches).
pub fn may_read<T>(ctx: &async_graphql::ContextBase<'_, T>, ty: &str, field: &str) -> bool {
    PlainlyReadable::of(ctx).may_read(ty, field)
}

/// What a plain read (`graphql::render`) may answer for the caller of a request: the
/// permission table and the caller, looked up once for a whole selection set.
pub struct PlainlyReadable<'a> {
    table: Option<&'a PermissionTable>,
    who: Option<&'a Principal>,
}

impl<'a> PlainlyReadable<'a> {
    pub fn of<T>(ctx: &async_graphql::ContextBase<'a, T>) -> Self {
        Self {
            table: ctx.data_opt::<Arc<PermissionTable>>().map(|t| &**t),
            who: ctx
                .data_opt::<RequestAuth>()
                .and_then(|auth| auth.0.as_ref()),
        }
    }

    /// Whether `ty.field` may be answered without the enforcement hook seeing it: the caller
    /// may read it and it takes no guarded argument (which the hook checks at resolution).
    pub fn field(&self, ty: &str, field: &str) -> bool {
        self.table
            .is_none_or(|table| table.guarded_arguments(ty, field).is_none())
            && self.may_read(ty, field)
    }

    /// Whether the caller may read `ty.field`.
    fn may_read(&self, ty: &str, field: &str) -> bool {
        self.table
            .and_then(|table| table.get(ty, field))
            .is_none_or(|alternatives| self.who.is_some_and(|who| allows(who, alternatives)))
    }
}

/// The names among `fields` (of type `ty`) whose values the caller may read: that a guarded
/// field changed is itself something to hide from a caller who may not read it.
pub fn readable_fields(
    ctx: &async_graphql::Context<'_>,
    ty: &str,
    fields: &[String],
) -> Vec<String> {
    fields
        .iter()
        .filter(|field| may_read(ctx, ty, field))
        .cloned()
        .collect()
}

pub struct ScopeEnforcement {
    table: Arc<PermissionTable>,
}

impl ScopeEnforcement {
    pub fn new(table: Arc<PermissionTable>) -> Self {
        Self { table }
    }
}

impl ExtensionFactory for ScopeEnforcement {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Enforcer {
            table: self.table.clone(),
            variables: OnceLock::new(),
        })
    }
}

struct Enforcer {
    table: Arc<PermissionTable>,
    /// The request's variables, for arguments that reach guarded input fields.
    variables: OnceLock<Variables>,
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
        ApiError::Forbidden(_) | ApiError::ForbiddenInput { .. } => codes::FORBIDDEN,
    };
    let mut error = ServerError::new(err.to_string(), None).with_path(path_of(info));
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
    error
}

/// The first scope of the first alternative that `who` lacks, to name in the error.
fn missing(who: &Principal, alternatives: &[Vec<Scope>]) -> Scope {
    alternatives
        .first()
        .and_then(|all| all.iter().find(|s| !who.has(**s)).copied())
        .unwrap_or(Scope::CustomersRead)
}

impl Enforcer {
    /// The first input field in `value` (of input type `ty`) that `who` may not use.
    fn forbidden_input(&self, who: &Principal, value: &Value, ty: &str) -> Option<ApiError> {
        let fields = self.table.guarded_inputs.get(ty)?;
        match value {
            Value::List(items) => items
                .iter()
                .find_map(|item| self.forbidden_input(who, item, ty)),
            Value::Object(given) => given.iter().find_map(|(name, value)| {
                if *value == Value::Null {
                    return None;
                }
                if let Some(alternatives) = self.table.get(ty, name)
                    && !allows(who, alternatives)
                {
                    return Some(ApiError::ForbiddenInput {
                        input: format!("{ty}.{name}"),
                        scope: missing(who, alternatives),
                    });
                }
                let field_type = fields.get(name.as_str())?;
                self.forbidden_input(who, value, field_type)
            }),
            _ => None,
        }
    }

    /// Arguments of the field that use input fields the caller may not read.
    fn check_arguments(&self, who: &Principal, info: &ResolveInfo<'_>) -> Option<ApiError> {
        let guarded = self.table.guarded_arguments(info.parent_type, info.name)?;
        let empty = Variables::default();
        let variables = self.variables.get().unwrap_or(&empty);
        guarded.iter().find_map(|(argument, ty)| {
            let (_, value) = info
                .field
                .arguments
                .iter()
                .find(|(name, _)| name.node.as_str() == argument)?;
            // A variable not given (and without a default) is null: it uses nothing, but the
            // rest of the value must still be checked.
            let value = value.node.clone().into_const_with(|name| {
                Ok::<_, std::convert::Infallible>(variables.get(&name).cloned().unwrap_or_default())
            });
            let Ok(value) = value;
            self.forbidden_input(who, &value, ty)
        })
    }
}

#[async_trait::async_trait]
impl Extension for Enforcer {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let _ = self.variables.set(request.variables.clone());
        next.run(ctx, request).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let who = || {
            ctx.data_opt::<RequestAuth>()
                .and_then(|auth| auth.0.as_ref())
        };
        if let Some(alternatives) = self.table.get(info.parent_type, info.name) {
            match who() {
                None => return Err(refusal(&info, ApiError::Unauthenticated)),
                Some(who) if !allows(who, alternatives) => {
                    return Err(refusal(
                        &info,
                        ApiError::Forbidden(missing(who, alternatives)),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(who) = who()
            && let Some(refused) = self.check_arguments(who, &info)
        {
            return Err(refusal(&info, refused));
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
        let get = |t: &str, f: &str| table.get(t, f).cloned();
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
        assert_eq!(
            get("CustomerFilter", "email"),
            Some(vec![vec![Scope::PiiRead]])
        );
        // Every scope a field needs, for deciding which callers need no per-field checks.
        for scope in [Scope::PiiRead, Scope::CustomersRead, Scope::ActivitiesWrite] {
            assert!(table.scopes().contains(&scope), "{scope:?}");
        }
        assert!(table.guarded_arguments("Query", "customers").is_some());
        assert!(table.guarded_arguments("Query", "customer").is_none());
    }
}
