//! Reading a request's document outside execution (the HTTP method check, grouping of live
//! operations): bounded before it is parsed, and the operation chosen exactly as execution
//! will choose it.

use std::collections::HashSet;

use async_graphql::Positioned;
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};

use super::limits::check_nesting;

/// Parses a document whose nesting was checked first, so the parser cannot overflow.
pub fn parse_bounded(document: &str) -> Option<ExecutableDocument> {
    check_nesting(document).ok()?;
    async_graphql::parser::parse_query(document).ok()
}

/// The operation a request runs: the named one, or the document's only one when no name is
/// given. `None` when execution would refuse the request anyway.
pub fn selected<'d>(
    doc: &'d ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'d Positioned<OperationDefinition>> {
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), None) => Some(op),
        (DocumentOperations::Single(_), Some(_)) => None,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next(),
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// The type of the operation a request would run.
pub fn operation_type(document: &str, operation_name: Option<&str>) -> Option<OperationType> {
    let doc = parse_bounded(document)?;
    selected(&doc, operation_name).map(|op| op.node.ty)
}

/// Whether an operation's root selects `__schema` or `__type` (directly or through
/// fragments; the introspection roots exist nowhere else). Each fragment is looked at once.
pub fn selects_introspection(doc: &ExecutableDocument, operation: &OperationDefinition) -> bool {
    let mut seen = HashSet::new();
    let mut pending: Vec<&SelectionSet> = vec![&operation.selection_set.node];
    while let Some(set) = pending.pop() {
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    if matches!(field.node.name.node.as_str(), "__schema" | "__type") {
                        return true;
                    }
                }
                Selection::InlineFragment(inline) => {
                    pending.push(&inline.node.selection_set.node);
                }
                Selection::FragmentSpread(spread) => {
                    let name = &spread.node.fragment_name.node;
                    if seen.insert(name.clone())
                        && let Some(fragment) = doc.fragments.get(name)
                    {
                        pending.push(&fragment.node.selection_set.node);
                    }
                }
            }
        }
    }
    false
}
