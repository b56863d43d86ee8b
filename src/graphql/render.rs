//! Plain reads: a connection whose selection is only data the caller may read (scalars,
//! `__typename`, cursors, page info and nested connections of that kind) is answered by
//! building its response straight from the fetched rows, instead of resolving each field as
//! a future of its own. async-graphql spends a boxed future, a context and an index-map
//! insert per field it resolves, and a page of 50 customers with 10 activities each is 550
//! objects. Anything else in the selection (a relation resolved through a loader, a count, a
//! field or argument the caller may not use, a custom directive, a response key selected
//! twice) makes the connection resolve the usual way, so the answer is the same either way
//! (`tests/api/plain_reads.rs` compares the two).
//!
//! Plans read the query document through `ContextBase::item` and `QueryEnv::fragments`,
//! which async-graphql marks unstable; by execution `@skip` and `@include` are applied to it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::Mutex;

use async_graphql::parser::types::{Field, Selection, SelectionSet};
use async_graphql::registry::Registry;
use async_graphql::{ContextSelectionSet, Name, OutputType, Positioned, ServerResult, Value};

use crate::domain::page::{RowCursor, Slice};
pub use crate::graphql::json::Json;

/// A field's answer, built ahead from rows (`Plain`) or resolved field by field (`Typed`).
/// Its GraphQL type is `T`'s: the schema does not change.
pub enum Rendered<T> {
    Plain(Mutex<Option<Value>>),
    Typed(T),
}

impl<T> Rendered<T> {
    pub fn plain(answer: Json) -> Self {
        Self::Plain(Mutex::new(Some(answer.into_value())))
    }
}

impl<T: OutputType> OutputType for Rendered<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        match self {
            // A field is resolved once, so the value is moved out rather than copied.
            Self::Plain(value) => Ok(value
                .lock()
                .ok()
                .and_then(|mut v| v.take())
                .unwrap_or_default()),
            Self::Typed(inner) => inner.resolve(ctx, field).await,
        }
    }
}

/// Put in a request whose document selects some response key twice in one selection set
/// (`document::merges_fields`): async-graphql merges the answers of such fields, which it
/// cannot do with plain answers (JSON text), so none is planned.
pub struct NoPlainAnswers;

/// The fields a selection set on the object type `ty` selects, through its fragments, in
/// document order; `None` when it is not plain: a response key selected twice (async-graphql
/// merges those), a directive left at execution (custom ones), or a fragment on a type that
/// is neither `ty` nor an interface it implements.
pub fn fields<'a>(
    ctx: &ContextSelectionSet<'a>,
    set: &'a SelectionSet,
    ty: &str,
) -> Option<Vec<&'a Positioned<Field>>> {
    let applies = |condition: Option<&str>| match condition {
        None => true,
        Some(on) => {
            on == ty
                || ctx
                    .schema_env
                    .registry
                    .implements
                    .get(ty)
                    .is_some_and(|interfaces| interfaces.contains(on))
        }
    };
    if ctx.data_opt::<NoPlainAnswers>().is_some() {
        return None;
    }
    let mut out = Vec::new();
    let mut keys = HashSet::new();
    // Fragments nest as deep as the document does (bounded by `limits`), so no recursion.
    let mut stack = vec![set.items.iter()];
    while let Some(items) = stack.last_mut() {
        let Some(selection) = items.next() else {
            stack.pop();
            continue;
        };
        match &selection.node {
            Selection::Field(field) => {
                let key = field.node.response_key().node.as_str();
                if !field.node.directives.is_empty() || !keys.insert(key) {
                    return None;
                }
                out.push(field);
            }
            Selection::FragmentSpread(spread) => {
                let fragment = ctx
                    .query_env
                    .fragments
                    .get(&spread.node.fragment_name.node)?;
                let on = fragment.node.type_condition.node.on.node.as_str();
                if !spread.node.directives.is_empty()
                    || !fragment.node.directives.is_empty()
                    || !applies(Some(on))
                {
                    return None;
                }
                stack.push(fragment.node.selection_set.node.items.iter());
            }
            Selection::InlineFragment(inline) => {
                let on = inline
                    .node
                    .type_condition
                    .as_ref()
                    .map(|c| c.node.on.node.as_str());
                if !inline.node.directives.is_empty() || !applies(on) {
                    return None;
                }
                stack.push(inline.node.selection_set.node.items.iter());
            }
        }
    }
    Some(out)
}

/// The GraphQL names of a connection type and its edge type.
#[derive(Clone, Copy)]
pub struct ConnectionTypes {
    pub connection: &'static str,
    pub edge: &'static str,
}

/// What a plain connection selection asks for, by response key; `P` plans a node.
pub struct ConnectionPlan<P> {
    parts: Vec<(Name, Part<P>)>,
}

enum Part<P> {
    Typename(&'static str),
    Nodes(P),
    Edges(Vec<(Name, EdgePart<P>)>),
    PageInfo(Vec<(Name, PageInfoPart)>),
}

enum EdgePart<P> {
    Typename(&'static str),
    Cursor,
    Node(P),
}

#[derive(Clone, Copy)]
enum PageInfoPart {
    Typename,
    HasNextPage,
    HasPreviousPage,
    StartCursor,
    EndCursor,
}

impl<P> ConnectionPlan<P> {
    /// The plan of the connection whose selection set `ctx` is at, or `None` when it is not
    /// plain. `node` plans a node's selection set (given its context).
    pub fn of(
        ctx: &ContextSelectionSet<'_>,
        types: ConnectionTypes,
        node: &dyn Fn(&ContextSelectionSet<'_>) -> Option<P>,
    ) -> Option<Self> {
        let mut parts = Vec::new();
        for field in fields(ctx, &ctx.item.node, types.connection)? {
            let key = field.node.response_key().node.clone();
            let inner = || {
                ctx.with_field(field)
                    .with_selection_set(&field.node.selection_set)
            };
            let part = match field.node.name.node.as_str() {
                "__typename" => Part::Typename(types.connection),
                "nodes" => Part::Nodes(node(&inner())?),
                "edges" => Part::Edges(edge_plan(&inner(), types.edge, node)?),
                "pageInfo" => Part::PageInfo(page_info_plan(&inner())?),
                _ => return None,
            };
            parts.push((key, part));
        }
        Some(Self { parts })
    }

    /// The plan of the connection field `ctx` resolves.
    pub fn of_field(
        ctx: &async_graphql::Context<'_>,
        types: ConnectionTypes,
        node: &dyn Fn(&ContextSelectionSet<'_>) -> Option<P>,
    ) -> Option<Self> {
        Self::of(
            &ctx.with_selection_set(&ctx.item.node.selection_set),
            types,
            node,
        )
    }

    /// The node plans in it (under `nodes` and `edges.node`).
    pub fn nodes(&self) -> impl Iterator<Item = &P> {
        self.parts.iter().flat_map(|(_, part)| {
            let (nodes, edges): (Option<&P>, &[(Name, EdgePart<P>)]) = match part {
                Part::Nodes(p) => (Some(p), &[]),
                Part::Edges(edge) => (None, edge),
                _ => (None, &[]),
            };
            nodes
                .into_iter()
                .chain(edges.iter().filter_map(|(_, e)| match e {
                    EdgePart::Node(p) => Some(p),
                    _ => None,
                }))
        })
    }

    /// The connection's answer for `slice`; `node` writes one row by a node plan.
    pub fn render<T>(&self, slice: &Slice<T>, node: &dyn Fn(&P, &mut Json, &T)) -> Json {
        let mut out = Json::new();
        self.write(&mut out, slice, node);
        out
    }

    /// Writes the connection's answer for `slice` into `out`.
    pub fn write<T>(&self, out: &mut Json, slice: &Slice<T>, node: &dyn Fn(&P, &mut Json, &T)) {
        out.object(&self.parts, |out, part| match part {
            Part::Typename(ty) => out.str(ty),
            Part::Nodes(plan) => out.list(&slice.rows, |out, (_, row)| node(plan, out, row)),
            Part::Edges(edge) => out.list(&slice.rows, |out, (cursor, row)| {
                write_edge(out, edge, cursor, row, node)
            }),
            Part::PageInfo(info) => write_page_info(out, info, slice),
        });
    }
}

fn edge_plan<P>(
    ctx: &ContextSelectionSet<'_>,
    ty: &'static str,
    node: &dyn Fn(&ContextSelectionSet<'_>) -> Option<P>,
) -> Option<Vec<(Name, EdgePart<P>)>> {
    let mut parts = Vec::new();
    for field in fields(ctx, &ctx.item.node, ty)? {
        let part = match field.node.name.node.as_str() {
            "__typename" => EdgePart::Typename(ty),
            "cursor" => EdgePart::Cursor,
            "node" => EdgePart::Node(node(
                &ctx.with_field(field)
                    .with_selection_set(&field.node.selection_set),
            )?),
            _ => return None,
        };
        parts.push((field.node.response_key().node.clone(), part));
    }
    Some(parts)
}

fn page_info_plan(ctx: &ContextSelectionSet<'_>) -> Option<Vec<(Name, PageInfoPart)>> {
    let mut parts = Vec::new();
    for field in fields(ctx, &ctx.item.node, "PageInfo")? {
        let part = match field.node.name.node.as_str() {
            "__typename" => PageInfoPart::Typename,
            "hasNextPage" => PageInfoPart::HasNextPage,
            "hasPreviousPage" => PageInfoPart::HasPreviousPage,
            "startCursor" => PageInfoPart::StartCursor,
            "endCursor" => PageInfoPart::EndCursor,
            _ => return None,
        };
        parts.push((field.node.response_key().node.clone(), part));
    }
    Some(parts)
}

fn write_edge<P, T>(
    out: &mut Json,
    edge: &[(Name, EdgePart<P>)],
    cursor: &RowCursor,
    row: &T,
    node: &dyn Fn(&P, &mut Json, &T),
) {
    out.object(edge, |out, part| match part {
        EdgePart::Typename(ty) => out.str(ty),
        EdgePart::Cursor => out.str(&cursor.encode()),
        EdgePart::Node(plan) => node(plan, out, row),
    });
}

fn write_page_info<T>(out: &mut Json, info: &[(Name, PageInfoPart)], slice: &Slice<T>) {
    let cursor = |out: &mut Json, row: Option<&(RowCursor, T)>| match row {
        Some((cursor, _)) => out.str(&cursor.encode()),
        None => out.null(),
    };
    out.object(info, |out, part| match part {
        PageInfoPart::Typename => out.str("PageInfo"),
        PageInfoPart::HasNextPage => out.bool(slice.has_next_page),
        PageInfoPart::HasPreviousPage => out.bool(slice.has_previous_page),
        PageInfoPart::StartCursor => cursor(out, slice.rows.first()),
        PageInfoPart::EndCursor => cursor(out, slice.rows.last()),
    });
}

/// A `DateTime` as its scalar writes it.
pub fn time(out: &mut Json, at: chrono::DateTime<chrono::Utc>) {
    out.value(&async_graphql::ScalarType::to_value(
        &crate::graphql::scalars::DateTime(at),
    ));
}

pub fn optional_time(out: &mut Json, at: Option<chrono::DateTime<chrono::Utc>>) {
    match at {
        Some(at) => time(out, at),
        None => out.null(),
    }
}
