//! Response keys in the order of the query (GraphQL spec §7.2.2). async-graphql resolves an
//! object's fields concurrently and inserts each as it finishes, so a slow `totalCount`
//! lands after `nodes`, and the order changes from run to run. After execution, each object
//! of the response is put back in the order its selection set lists the response keys
//! (fragments in place, the first occurrence of a key deciding), which is what the spec's
//! CollectFields gives.

use std::sync::Arc;

use async_graphql::Name;
use async_graphql::Value;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

use super::document::selected;

/// The document of a request, kept to order its response.
pub struct QueryOrder {
    doc: Arc<ExecutableDocument>,
    operation: Option<String>,
}

/// The response keys of an object, in order, each with the selection sets of its fields.
type Keys<'d> = Vec<(&'d Name, Vec<&'d SelectionSet>)>;

impl QueryOrder {
    pub fn new(doc: Arc<ExecutableDocument>, operation: Option<&str>) -> Self {
        Self {
            doc,
            operation: operation.map(str::to_owned),
        }
    }

    /// Puts every object of `data` in query order.
    pub fn apply(&self, data: &mut Value) {
        if let Some(operation) = selected(&self.doc, self.operation.as_deref()) {
            self.reorder(&[&operation.node.selection_set.node], data);
        }
    }

    fn reorder(&self, sets: &[&SelectionSet], value: &mut Value) {
        match value {
            Value::List(items) => {
                if items.is_empty() {
                    return;
                }
                let keys = self.keys(sets);
                for item in items {
                    self.reorder_object(&keys, item);
                }
            }
            Value::Object(_) => {
                let keys = self.keys(sets);
                self.reorder_object(&keys, value);
            }
            _ => {}
        }
    }

    fn reorder_object(&self, keys: &Keys<'_>, value: &mut Value) {
        match value {
            // Lists of lists: each element against the same selection.
            Value::List(items) => {
                for item in items {
                    self.reorder_object(keys, item);
                }
            }
            Value::Object(map) => {
                let position = |key: &Name| {
                    keys.iter()
                        .position(|(k, _)| *k == key)
                        .unwrap_or(usize::MAX)
                };
                // Most objects are already in order (plain answers are built in it), and
                // sorting an index map rebuilds its hash table: 20% of a nested read's
                // instructions when done for each of its 550 objects (callgrind).
                if !map.keys().map(position).is_sorted() {
                    map.sort_by(|a, _, b, _| position(a).cmp(&position(b)));
                }
                for (key, child) in map.iter_mut() {
                    if let Some((_, sets)) = keys.iter().find(|(k, _)| *k == key)
                        && !sets.is_empty()
                    {
                        self.reorder(sets, child);
                    }
                }
            }
            _ => {}
        }
    }

    fn keys<'d>(&'d self, sets: &[&'d SelectionSet]) -> Keys<'d> {
        let mut keys = Keys::new();
        for set in sets {
            self.collect(set, &mut keys, 0);
        }
        keys
    }

    fn collect<'d>(&'d self, set: &'d SelectionSet, keys: &mut Keys<'d>, depth: usize) {
        // Validation has refused fragment cycles; this only bounds the walk regardless.
        if depth > super::limits::MAX_DOCUMENT_NESTING {
            return;
        }
        for selection in &set.items {
            match &selection.node {
                Selection::Field(field) => {
                    let key = &field.node.response_key().node;
                    let children = &field.node.selection_set.node;
                    match keys.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, sets)) => sets.push(children),
                        None => keys.push((key, vec![children])),
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node)
                    {
                        self.collect(&fragment.node.selection_set.node, keys, depth + 1);
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.collect(&inline.node.selection_set.node, keys, depth + 1);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_follow_the_query_through_fragments_and_lists() {
        let doc = async_graphql::parser::parse_query(
            "{ b: __typename ...F list { y x } a: __typename } fragment F on Query { c: __typename }",
        )
        .map_err(|e| e.to_string());
        let Ok(doc) = doc else {
            panic!("{doc:?}");
        };
        let mut data = Value::from_json(serde_json::json!({
            "a": 1, "list": [{"x": 1, "y": 2}, {"x": 3, "y": 4}], "c": 3, "b": 2
        }))
        .unwrap_or_default();
        QueryOrder::new(Arc::new(doc), None).apply(&mut data);
        assert_eq!(
            serde_json::to_string(&data).unwrap_or_default(),
            r#"{"b":2,"c":3,"list":[{"y":2,"x":1},{"y":4,"x":3}],"a":1}"#
        );
    }
}
