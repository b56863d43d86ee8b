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

/// Whether some selection set of `doc` selects a response key more than once, counting the
/// fields of its inline fragments and of the fragments it spreads. async-graphql merges the
/// answers of such fields into one, which it cannot do with a plain answer (JSON text,
/// `graphql::json`), so a request with such a document gets none. Conservative: two fields
/// under one key on different type conditions count, as does a fragment cycle (which
/// validation refuses anyway). Each fragment's keys are collected once, and collecting stops
/// at the first key seen twice, so the work is bounded by the document's size.
pub fn merges_fields(doc: &ExecutableDocument) -> bool {
    let mut fragments = FragmentKeys::default();
    let mut pending: Vec<&SelectionSet> = doc
        .operations
        .iter()
        .map(|(_, op)| &op.node.selection_set.node)
        .chain(doc.fragments.values().map(|f| &f.node.selection_set.node))
        .collect();
    while let Some(set) = pending.pop() {
        let mut keys = HashSet::new();
        if !fragments.collect(doc, set, &mut keys, 0) {
            return true;
        }
        // Every field's own selection set, reached through inline fragments too (spread
        // fragments are checked as definitions).
        let mut inner = vec![set];
        while let Some(set) = inner.pop() {
            for selection in &set.items {
                match &selection.node {
                    Selection::Field(field) => pending.push(&field.node.selection_set.node),
                    Selection::InlineFragment(inline) => {
                        inner.push(&inline.node.selection_set.node)
                    }
                    Selection::FragmentSpread(_) => {}
                }
            }
        }
    }
    false
}

/// Whether an operation's root selection set selects a response key more than once
/// (through inline fragments and spreads; a spread deeper than `MAX_SPREAD_DEPTH` counts).
pub fn selects_a_root_key_twice(doc: &ExecutableDocument, operation: &OperationDefinition) -> bool {
    let mut keys = HashSet::new();
    !FragmentKeys::default().collect(doc, &operation.selection_set.node, &mut keys, 0)
}

/// How deep fragments may spread fragments before a document is taken to merge fields: the
/// walk recurses once per level.
const MAX_SPREAD_DEPTH: usize = 32;

/// The response keys each fragment's selection set collects (`None` while it is being
/// collected, or when it selects a key twice).
#[derive(Default)]
struct FragmentKeys<'d>(std::collections::HashMap<&'d str, Option<Vec<&'d str>>>);

impl<'d> FragmentKeys<'d> {
    /// Adds the keys `set` collects to `keys`; false when one is there already, or when
    /// fragments spread fragments deeper than `MAX_SPREAD_DEPTH` (`depth` so far).
    fn collect(
        &mut self,
        doc: &'d ExecutableDocument,
        set: &'d SelectionSet,
        keys: &mut HashSet<&'d str>,
        depth: usize,
    ) -> bool {
        let mut pending = vec![set];
        while let Some(set) = pending.pop() {
            for selection in &set.items {
                match &selection.node {
                    Selection::Field(field) => {
                        if !keys.insert(field.node.response_key().node.as_str()) {
                            return false;
                        }
                    }
                    Selection::InlineFragment(inline) => {
                        pending.push(&inline.node.selection_set.node);
                    }
                    Selection::FragmentSpread(spread) => {
                        let name = spread.node.fragment_name.node.as_str();
                        let Some(theirs) = self.of(doc, name, depth + 1) else {
                            return false;
                        };
                        for key in theirs {
                            if !keys.insert(key) {
                                return false;
                            }
                        }
                    }
                }
            }
        }
        true
    }

    /// The keys fragment `name` collects; `None` for a cycle, a key selected twice, or an
    /// unknown fragment (validation refuses those).
    fn of(
        &mut self,
        doc: &'d ExecutableDocument,
        name: &'d str,
        depth: usize,
    ) -> Option<Vec<&'d str>> {
        if let Some(known) = self.0.get(name) {
            return known.clone();
        }
        if depth > MAX_SPREAD_DEPTH {
            return None;
        }
        let (key, fragment) = doc.fragments.get_key_value(name)?;
        // In progress: a spread reaching it again is a cycle.
        self.0.insert(key.as_str(), None);
        let mut keys = HashSet::new();
        let collected = self
            .collect(doc, &fragment.node.selection_set.node, &mut keys, depth)
            .then(|| keys.into_iter().collect::<Vec<_>>());
        self.0.insert(key.as_str(), collected.clone());
        collected
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails loudly")]
mod tests {
    use super::merges_fields;

    fn merges(document: &str) -> bool {
        let doc = async_graphql::parser::parse_query(document).expect("a document");
        merges_fields(&doc)
    }

    #[test]
    fn a_key_selected_twice_in_one_set_merges() {
        assert!(merges("{ a { x } a { y } }"));
        assert!(merges("{ c { nodes { x } nodes { y } } }"));
        assert!(merges("{ a { x } ... on Query { a { y } } }"));
        assert!(merges("{ a { x } ...F } fragment F on Query { a { y } }"));
        assert!(merges(
            "{ ...F ...G } fragment F on Query { ...G } fragment G on Query { a }"
        ));
        assert!(merges("{ b: a c: a b: z }"));
        // A cycle (refused by validation) counts as merging.
        assert!(merges(
            "{ ...F } fragment F on Query { ...G } fragment G on Query { ...F }"
        ));
    }

    #[test]
    fn distinct_keys_do_not_merge() {
        assert!(!merges("{ a { x } b: a { y } }"));
        assert!(!merges(
            "{ a { x y } ...F } fragment F on Query { b { x } }"
        ));
        assert!(!merges(
            "query { c { ...F } d: c { ...F } } fragment F on C { x y ...G } fragment G on C { z }"
        ));
        assert!(!merges("query P { a { x } } query Q { a { y } }"));
    }

    #[test]
    fn a_key_twice_at_the_end_of_deep_spreads_merges() {
        // Fragments are walked in no fixed order: past `MAX_SPREAD_DEPTH` a chain counts as
        // merging, unless its deeper fragments were collected already; either way the key
        // the last fragment repeats is found, and the walk stays shallow.
        let mut document = String::from("{ ...F0 }");
        for i in 0..100 {
            document.push_str(&format!(" fragment F{i} on Query {{ x{i} ...F{} }}", i + 1));
        }
        document.push_str(" fragment F100 on Query { x0 }");
        assert!(merges(&document));
    }
}
