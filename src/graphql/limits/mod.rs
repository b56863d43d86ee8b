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

pub(crate) mod costs;
mod parsed;
mod scan;

use std::sync::Arc;

use async_graphql::parser::types::{ExecutableDocument, OperationType};
use async_graphql::{Pos, Request, ServerError};

pub use costs::{
    CostTable, DEFAULT_PAGE, MAX_INTROSPECTION_LISTS, ROW_WRITE, SCHEMA_INTROSPECTION_COST,
    STATEMENT, TYPE_INTROSPECTION_COST, WRITE, page_items, page_slicing,
};
use costs::{Measure, Measurer};
pub use parsed::{Parsed, ParsedDocuments};
pub use scan::check_nesting;
use scan::check_value;

use super::document::{selected, selects_a_root_key_twice, selects_introspection};
pub use crate::config::IntrospectionMode;

/// Deepest bracket nesting (`{`, `[`, `(`) of a document: far above any real query (the
/// standard introspection query nests 11), far below what the recursive parser survives.
pub const MAX_DOCUMENT_NESTING: usize = 64;
/// Deepest nesting of an input value (objects and lists), in a literal or a variable.
pub const MAX_VALUE_NESTING: usize = 32;
/// Most field selections of a document, aliases and fragment expansions included.
pub const MAX_SELECTIONS: usize = 1_000;
/// The cost a request without a token may spend: one full introspection query, no more.
pub const ANONYMOUS_BUDGET: usize = 6_000;

/// Limits a hostile query cannot get past.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest selection nesting, introspection excepted (schema tools need ~15 levels).
    pub max_depth: usize,
    /// Largest cost of a request with a token.
    pub max_complexity: usize,
    pub introspection: IntrospectionMode,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 50_000,
            introspection: IntrospectionMode::On,
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
    #[error(
        "the document selects more than {MAX_SELECTIONS} fields, arguments and directives (aliases and fragments included)"
    )]
    TooManySelections,
    #[error("the query is nested {depth} levels deep; the limit is {limit}")]
    TooDeep { depth: usize, limit: usize },
    #[error(
        "the query costs {cost}, more than the {limit} allowed{who} (see the @cost and @listSize directives of the schema; `__type` costs {TYPE_INTROSPECTION_COST}, `__schema` {SCHEMA_INTROSPECTION_COST})"
    )]
    TooCostly {
        cost: usize,
        limit: usize,
        who: &'static str,
    },
    #[error("fragment `{0}` spreads itself")]
    FragmentCycle(String),
    #[error(
        "the mutation asks for a field twice under one response key (through aliases or fragments); each of its fields is a write that runs once: ask for it once"
    )]
    MutationFieldTwice,
    #[error(
        "introspection nests more than {MAX_INTROSPECTION_LISTS} lists (`types`, `fields`, `possibleTypes`…) in one another"
    )]
    IntrospectionTooDeep,
    #[error("introspection is disabled on this server")]
    IntrospectionOff,
    #[error("introspection needs a token on this server: send a bearer token")]
    IntrospectionNeedsToken,
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

/// A request that passed the limits: its parsed document (shared with the cache of parsed
/// documents) and what it costs (what rate limits charge).
pub struct Admission {
    pub parsed: Arc<Parsed>,
    pub cost: usize,
}

/// Checks a request and parses its document; the parsed document is what will run. The
/// defaults of the operation's variables are filled in, so that what is checked (and what
/// later extensions see) is what will execute.
pub fn admit(
    limits: &Limits,
    costs: &CostTable,
    parsed: &ParsedDocuments,
    authenticated: bool,
    request: &mut Request,
) -> Result<Admission, ServerError> {
    let known = match parsed.get(&request.query) {
        Some(known) => known,
        None => {
            let known = Arc::new(Parsed::new(parse(&request.query)?));
            parsed.keep(&request.query, &known);
            known
        }
    };
    let doc = &known.doc;
    let mut items = 0usize;
    for (_, operation) in doc.operations.iter() {
        for definition in &operation.node.variable_definitions {
            items = items.saturating_add(1);
            if let Some(default) = &definition.node.default_value {
                let what = || format!("the default of `${}`", definition.node.name.node);
                check_value(&default.node, &what).map_err(|r| r.at(Some(default.pos)))?;
            }
        }
    }
    if let Some(operation) = selected(doc, request.operation_name.as_deref()) {
        let refusal = match limits.introspection {
            IntrospectionMode::On => None,
            IntrospectionMode::Authenticated if authenticated => None,
            IntrospectionMode::Authenticated => Some(Rejection::IntrospectionNeedsToken),
            IntrospectionMode::Off => Some(Rejection::IntrospectionOff),
        };
        if let Some(refusal) = refusal
            && selects_introspection(doc, &operation.node)
        {
            return Err(refusal.at(Some(operation.pos)));
        }
        for definition in &operation.node.variable_definitions {
            let name = &definition.node.name.node;
            if let Some(default) = &definition.node.default_value
                && request.variables.get(name).is_none()
            {
                request.variables.insert(name.clone(), default.node.clone());
            }
        }
    }
    for (name, value) in request.variables.iter() {
        let what = || format!("variable `${name}`");
        check_value(value, &what).map_err(|r| r.at(None))?;
    }
    let mut measurer = Measurer::new(doc, costs, &request.variables);
    let mut whole = Measure {
        selections: items,
        ..Measure::default()
    };
    for (_, operation) in doc.operations.iter() {
        let root = match operation.node.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        let measure = measurer
            .selection_set(root, &operation.node.selection_set.node, None)
            .map_err(|(r, pos)| r.at(pos.or(Some(operation.pos))))?;
        whole.add(measure);
        if whole.selections > MAX_SELECTIONS {
            return Err(Rejection::TooManySelections.at(Some(operation.pos)));
        }
    }
    // Every fragment definition counts one item (unused ones are validated all the same),
    // and its literals are checked.
    for (name, fragment) in doc.fragments.iter() {
        measurer
            .fragment(name, None)
            .map_err(|(r, pos)| r.at(pos))?;
        whole.selections = whole.selections.saturating_add(1);
        if whole.selections > MAX_SELECTIONS {
            return Err(Rejection::TooManySelections.at(Some(fragment.pos)));
        }
    }
    // async-graphql runs every copy of a root field, and merges their answers: a mutation
    // selecting one twice would write twice and show one of the writes (found by review).
    // A document that merges no field anywhere (known once it is parsed) has nothing to check.
    if known.merges_fields
        && let Some(operation) = selected(doc, request.operation_name.as_deref())
        && operation.node.ty == OperationType::Mutation
        && selects_a_root_key_twice(doc, &operation.node)
    {
        return Err(Rejection::MutationFieldTwice.at(Some(operation.pos)));
    }
    if whole.depth > limits.max_depth {
        return Err(Rejection::TooDeep {
            depth: whole.depth,
            limit: limits.max_depth,
        }
        .at(None));
    }
    let (limit, who) = if authenticated {
        (limits.max_complexity, "")
    } else {
        // Never more than a caller with a token may spend.
        (
            ANONYMOUS_BUDGET.min(limits.max_complexity),
            " without a token",
        )
    };
    if whole.total() > limit {
        return Err(Rejection::TooCostly {
            cost: whole.total(),
            limit,
            who,
        }
        .at(None));
    }
    Ok(Admission {
        parsed: known,
        cost: whole.total(),
    })
}

/// A document's text past the nesting scan, parsed.
fn parse(text: &str) -> Result<ExecutableDocument, ServerError> {
    check_nesting(text).map_err(|r| r.at(None))?;
    async_graphql::parser::parse_query(text).map_err(|err| {
        let mut err = ServerError::from(err);
        err.extensions
            .get_or_insert_with(Default::default)
            .set("code", crate::graphql::codes::PARSE_FAILED);
        err
    })
}

#[cfg(test)]
mod tests {
    use super::scan::*;
    use super::*;
    use async_graphql_value::ConstValue;

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

#[cfg(test)]
mod cost_examples {
    use super::*;

    fn cost_of(query: &str) -> Result<usize, String> {
        let costs = CostTable::from_sdl(&crate::graphql::sdl());
        let limits = Limits {
            max_complexity: usize::MAX,
            ..Limits::default()
        };
        let mut request = Request::new(query);
        let doc = admit(
            &limits,
            &costs,
            &ParsedDocuments::default(),
            true,
            &mut request,
        )
        .map_err(|e| e.message)?
        .parsed
        .doc
        .clone();
        let mut measurer = Measurer::new(&doc, &costs, &request.variables);
        let mut whole = Measure::default();
        for (_, op) in doc.operations.iter() {
            let measure = measurer
                .selection_set("Query", &op.node.selection_set.node, None)
                .map_err(|(r, _)| r.to_string())?;
            whole.add(measure);
        }
        Ok(whole.total())
    }

    #[test]
    fn the_readme_example_costs_what_it_says() {
        let nested = "{ customers(first: 50) { nodes { name activities(first: 10) { nodes { subject } } } } }";
        assert_eq!(cost_of(nested), Ok(1_351));
        // A statement counts once however many parents share it; rows count per parent.
        let with_owner = "{ customers(first: 50) { nodes { name owner { id } } } }";
        assert_eq!(cost_of(with_owner), Ok(100 + 1 + 50 * (1 + 1 + 2) + 100));
    }
}
