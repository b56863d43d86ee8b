//! What a request may ask for, checked before anything recurses over it or runs it.
//!
//! The parser, the validation rules and input coercion all recurse over the document and
//! its values, and async-graphql's own checks expand every fragment spread anew (a chain of
//! fragments that each spread the next twice costs 2^n). So the first step of every request,
//! over HTTP or WebSocket, is a scan that recurses over nothing: the document's bracket
//! nesting is counted without parsing it, variables are walked with an explicit stack. Only
//! then is the document parsed (once; the parsed document is handed on to execution) and
//! measured with every fragment measured once: selections, depth outside introspection, and a
//! cost in which introspection pays for the work it does.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Pos, Request, ServerError, ServerResult};
use async_graphql_value::{ConstValue, Value};

use super::context::RequestAuth;

/// Deepest bracket nesting (`{`, `[`, `(`) of a document: far above any real query (the
/// standard introspection query nests 11), far below what the recursive parser survives.
pub const MAX_DOCUMENT_NESTING: usize = 64;
/// Deepest nesting of an input value (objects and lists), in a literal or a variable.
pub const MAX_VALUE_NESTING: usize = 32;
/// Most field selections of a document, aliases and fragment expansions included.
pub const MAX_SELECTIONS: usize = 1_000;
/// What one `__schema` costs: it lists every type with its fields and arguments.
pub const SCHEMA_INTROSPECTION_COST: usize = 5_000;
/// What one `__type(name:)` costs.
pub const TYPE_INTROSPECTION_COST: usize = 50;
/// The cost a request without a token may spend: one full introspection query, no more.
pub const ANONYMOUS_BUDGET: usize = 6_000;

/// Limits a hostile query cannot get past.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest selection nesting, introspection excepted (schema tools need ~15 levels).
    pub max_depth: usize,
    /// Largest cost of a request with a token.
    pub max_complexity: usize,
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 50_000,
            introspection: true,
        }
    }
}

/// Why a request was refused before it ran. The text is for the client.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Rejection {
    #[error("the document nests deeper than {MAX_DOCUMENT_NESTING} levels of brackets")]
    DocumentTooDeep,
    #[error("{0} nests deeper than {MAX_VALUE_NESTING} levels")]
    ValueTooDeep(String),
    #[error("{0} contains a NUL character")]
    NulCharacter(String),
    #[error("the document selects more than {MAX_SELECTIONS} fields (aliases and fragments included)")]
    TooManySelections,
    #[error("the query is nested {depth} levels deep; the limit is {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error(
        "the query costs {cost}, more than the {limit} allowed{who} (a field costs 1, `__type` {TYPE_INTROSPECTION_COST}, `__schema` {SCHEMA_INTROSPECTION_COST})"
    )]
    TooCostly {
        cost: usize,
        limit: usize,
        who: &'static str,
    },
    #[error("fragment `{0}` spreads itself")]
    FragmentCycle(String),
}

impl Rejection {
    /// Whether the fault is in an input value (BAD_USER_INPUT) rather than the document's
    /// shape (GRAPHQL_VALIDATION_FAILED).
    pub fn is_input(&self) -> bool {
        matches!(self, Self::ValueTooDeep(_) | Self::NulCharacter(_))
    }

    /// The request error, with a location only where one part of the document is at fault.
    fn at(self, pos: Option<Pos>) -> ServerError {
        let mut err = ServerError::new(self.to_string(), pos);
        err.source = Some(Arc::new(self));
        err
    }
}

/// The bracket nesting of a GraphQL document, counted without parsing: strings, block
/// strings and comments are skipped. Stops at the first level past the limit.
pub fn check_nesting(document: &str) -> Result<(), Rejection> {
    let bytes = document.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_DOCUMENT_NESTING {
                    return Err(Rejection::DocumentTooDeep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Walks a value with an explicit stack: depth and NUL characters (PostgreSQL refuses them
/// in text and JSON, so they must never reach it).
fn check_value<'a>(value: &'a ConstValue, what: &dyn Fn() -> String) -> Result<(), Rejection> {
    use ConstValue as V;
    let mut stack: Vec<(&'a V, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            V::String(s) if s.contains('\0') => return Err(Rejection::NulCharacter(what())),
            V::List(_) | V::Object(_) if depth >= MAX_VALUE_NESTING => {
                return Err(Rejection::ValueTooDeep(what()));
            }
            V::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            V::Object(fields) => {
                for (key, v) in fields {
                    if key.contains('\0') {
                        return Err(Rejection::NulCharacter(what()));
                    }
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The same checks on a literal in the document (whose nesting is bounded already).
fn check_literal(value: &Value, depth: usize, what: &dyn Fn() -> String) -> Result<(), Rejection> {
    match value {
        Value::String(s) if s.contains('\0') => Err(Rejection::NulCharacter(what())),
        Value::List(_) | Value::Object(_) if depth >= MAX_VALUE_NESTING => {
            Err(Rejection::ValueTooDeep(what()))
        }
        Value::List(items) => items
            .iter()
            .try_for_each(|v| check_literal(v, depth + 1, what)),
        Value::Object(fields) => fields.iter().try_for_each(|(key, v)| {
            if key.contains('\0') {
                return Err(Rejection::NulCharacter(what()));
            }
            check_literal(v, depth + 1, what)
        }),
        _ => Ok(()),
    }
}

/// A refusal, and the part of the document at fault when there is one.
type Refused = (Rejection, Option<Pos>);

/// What a selection set asks for, fragments expanded.
#[derive(Clone, Copy, Default)]
struct Measure {
    selections: usize,
    /// Nesting of fields, not counting what lies under `__schema` / `__type`.
    depth: usize,
    introspection: usize,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.selections = self.selections.saturating_add(other.selections);
        self.depth = self.depth.max(other.depth);
        self.introspection = self.introspection.saturating_add(other.introspection);
    }
}

struct Measurer<'a> {
    doc: &'a ExecutableDocument,
    fragments: HashMap<&'a Name, Measure>,
    visiting: Vec<&'a Name>,
}

impl<'a> Measurer<'a> {
    fn selection_set(&mut self, set: &'a SelectionSet) -> Result<Measure, Refused> {
        let mut total = Measure::default();
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    for (name, value) in &field.arguments {
                        let what = || format!("argument `{}` of `{}`", name.node, field.name.node);
                        check_literal(&value.node, 0, &what)
                            .map_err(|r| (r, Some(value.pos)))?;
                    }
                    let inner = self.selection_set(&field.selection_set.node)?;
                    let (cost, counts_depth) = match field.name.node.as_str() {
                        "__schema" => (SCHEMA_INTROSPECTION_COST, false),
                        "__type" => (TYPE_INTROSPECTION_COST, false),
                        _ => (0, true),
                    };
                    total.add(Measure {
                        selections: inner.selections.saturating_add(1),
                        depth: if counts_depth { inner.depth + 1 } else { 0 },
                        introspection: inner.introspection.saturating_add(cost),
                    });
                }
                Selection::InlineFragment(inline) => {
                    total.add(self.selection_set(&inline.node.selection_set.node)?);
                }
                Selection::FragmentSpread(spread) => {
                    let mut measure = self.fragment(&spread.node.fragment_name.node)?;
                    measure.selections = measure.selections.saturating_add(1);
                    total.add(measure);
                }
            }
            if total.selections > MAX_SELECTIONS {
                return Err((Rejection::TooManySelections, Some(selection.pos)));
            }
        }
        Ok(total)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<Measure, Refused> {
        if let Some(known) = self.fragments.get(name) {
            return Ok(*known);
        }
        if self.visiting.contains(&name) {
            return Err((Rejection::FragmentCycle(name.to_string()), None));
        }
        // Unknown fragments are the validator's to report.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(Measure::default());
        };
        if self.visiting.len() >= MAX_DOCUMENT_NESTING {
            return Err((Rejection::DocumentTooDeep, Some(fragment.pos)));
        }
        self.visiting.push(name);
        let measure = self.selection_set(&fragment.node.selection_set.node);
        self.visiting.pop();
        let measure = measure?;
        self.fragments.insert(name, measure);
        Ok(measure)
    }
}

/// Checks a request and parses its document; the parsed document is what will run.
pub fn admit(
    limits: &Limits,
    authenticated: bool,
    request: &Request,
) -> Result<ExecutableDocument, ServerError> {
    check_nesting(&request.query).map_err(|r| r.at(None))?;
    for (name, value) in request.variables.iter() {
        let what = || format!("variable `${name}`");
        check_value(value, &what).map_err(|r| r.at(None))?;
    }
    let doc = async_graphql::parser::parse_query(&request.query)?;
    let mut measurer = Measurer {
        doc: &doc,
        fragments: HashMap::new(),
        visiting: Vec::new(),
    };
    let mut whole = Measure::default();
    for (_, operation) in doc.operations.iter() {
        let measure = measurer
            .selection_set(&operation.node.selection_set.node)
            .map_err(|(r, pos)| r.at(pos.or(Some(operation.pos))))?;
        whole.add(measure);
        if whole.selections > MAX_SELECTIONS {
            return Err(Rejection::TooManySelections.at(Some(operation.pos)));
        }
    }
    // Fragments no operation uses are still parsed and validated: their literals too.
    for (name, _) in doc.fragments.iter() {
        measurer.fragment(name).map_err(|(r, pos)| r.at(pos))?;
    }
    if whole.depth > limits.max_depth {
        return Err(Rejection::TooDeep {
            depth: whole.depth,
            limit: limits.max_depth,
        }
        .at(None));
    }
    let cost = whole.selections.saturating_add(whole.introspection);
    let (limit, who) = if authenticated {
        (limits.max_complexity, "")
    } else {
        (ANONYMOUS_BUDGET, " without a token")
    };
    if cost > limit {
        return Err(Rejection::TooCostly { cost, limit, who }.at(None));
    }
    Ok(doc)
}

/// Runs `admit` first for every request, over HTTP and WebSocket alike.
pub struct RequestLimits {
    limits: Arc<Limits>,
}

impl RequestLimits {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits: Arc::new(limits),
        }
    }
}

impl ExtensionFactory for RequestLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(Admission {
            limits: self.limits.clone(),
        })
    }
}

struct Admission {
    limits: Arc<Limits>,
}

#[async_trait::async_trait]
impl Extension for Admission {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let authenticated = request
            .data
            .get(&std::any::TypeId::of::<RequestAuth>())
            .and_then(|data| data.downcast_ref::<RequestAuth>())
            .is_some_and(|auth| auth.0.is_some());
        let doc = admit(&self.limits, authenticated, &request)?;
        request.set_parsed_query(doc);
        next.run(ctx, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_counted_outside_strings_and_comments() {
        let deep = format!("{{{}}}", "[".repeat(70));
        assert_eq!(check_nesting(&deep), Err(Rejection::DocumentTooDeep));
        let quoted = format!("{{ a(s: \"{}\") }}", "{".repeat(100));
        assert_eq!(check_nesting(&quoted), Ok(()));
        let block = format!("{{ a(s: \"\"\"{}\\\"\"\" \"\"\") }}", "[".repeat(100));
        assert_eq!(check_nesting(&block), Ok(()));
        let comment = format!("# {}\n{{ a }}", "(".repeat(100));
        assert_eq!(check_nesting(&comment), Ok(()));
    }

    #[test]
    fn deep_variables_are_refused_without_recursion() {
        let mut value = ConstValue::Null;
        for _ in 0..100_000 {
            value = ConstValue::List(vec![value]);
        }
        let refused = check_value(&value, &|| "variable `$x`".into());
        assert_eq!(
            refused,
            Err(Rejection::ValueTooDeep("variable `$x`".into()))
        );
        // Dropping 100,000 levels recurses too; take it apart level by level.
        while let ConstValue::List(mut items) = value {
            value = items.pop().unwrap_or_default();
        }
    }
}
