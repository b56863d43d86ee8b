//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo`, and a lazy `totalCount`
//! that costs a query only when asked for.

use async_graphql::Object;

use crate::domain::page::{RowCursor, Slice};

/// Cursors are encoded only when asked for.
#[derive(Clone, Debug, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start: Option<RowCursor>,
    pub end: Option<RowCursor>,
}

impl PageInfo {
    pub fn of<T>(slice: &Slice<T>) -> Self {
        Self {
            has_next_page: slice.has_next_page,
            has_previous_page: slice.has_previous_page,
            start: slice.rows.first().map(|(c, _)| c.clone()),
            end: slice.rows.last().map(|(c, _)| c.clone()),
        }
    }
}

#[Object]
impl PageInfo {
    async fn has_next_page(&self) -> bool {
        self.has_next_page
    }

    async fn has_previous_page(&self) -> bool {
        self.has_previous_page
    }

    async fn start_cursor(&self) -> Option<String> {
        self.start.as_ref().map(RowCursor::encode)
    }

    async fn end_cursor(&self) -> Option<String> {
        self.end.as_ref().map(RowCursor::encode)
    }
}

/// The columns a connection's selection needs: those of the node fields it selects under
/// `nodes` and `edges.node` (through fragments), from the node type's `fields` table, plus
/// `always` (what its relations and cursors read).
pub fn projection<E: sea_orm::EntityTrait>(
    ctx: &async_graphql::Context<'_>,
    fields: &[(&str, E::Column)],
    always: &[E::Column],
) -> crate::domain::projection::Projection<E> {
    let look = ctx.look_ahead();
    node_projection(
        &[look.field("nodes"), look.field("edges").field("node")],
        fields,
        always,
    )
}

/// The columns the node selections `nodes` read, by the fields that need them.
pub fn node_projection<E: sea_orm::EntityTrait>(
    nodes: &[async_graphql::Lookahead<'_>],
    fields: &[(&str, E::Column)],
    always: &[E::Column],
) -> crate::domain::projection::Projection<E> {
    let selected = |field: &str| nodes.iter().any(|n| n.field(field).exists());
    let base = always
        .iter()
        .fold(crate::domain::projection::Projection::none(), |p, c| {
            p.with(*c)
        });
    fields
        .iter()
        .filter(|(field, _)| selected(field))
        .fold(base, |p, (_, column)| p.with(*column))
}

/// What of its page a connection's selection reads besides the rows (through fragments;
/// a field under `@skip` counts as read, which costs a little, never a wrong answer).
pub fn page_reads(ctx: &async_graphql::Context<'_>) -> crate::domain::page::PageReads {
    let look = ctx.look_ahead();
    let info = look.field("pageInfo");
    crate::domain::page::PageReads {
        cursors: look.field("edges").field("cursor").exists()
            || info.field("startCursor").exists()
            || info.field("endCursor").exists(),
        beyond: info.field("hasNextPage").exists() || info.field("hasPreviousPage").exists(),
    }
}

/// Saturates: a GraphQL `Int` is 32 bits.
pub fn count_to_int(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// Declares `<Name>Connection` and `<Name>Edge` over a node type. The connection holds a
/// `total` value whose `resolve(ctx)` computes `totalCount` on demand.
macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $total:ty) => {
        pub struct $edge {
            pub cursor: $crate::domain::page::RowCursor,
            pub node: $node,
        }

        #[async_graphql::Object]
        impl $edge {
            /// Opaque; pass it as `after` or `before`.
            async fn cursor(&self) -> String {
                self.cursor.encode()
            }

            async fn node(&self) -> &$node {
                &self.node
            }
        }

        pub struct $conn {
            pub edges: Vec<$edge>,
            pub page_info: $crate::graphql::connection::PageInfo,
            pub total: $total,
        }

        impl $conn {
            pub fn new<T>(slice: $crate::domain::page::Slice<T>, total: $total) -> Self
            where
                $node: From<T>,
            {
                let page_info = $crate::graphql::connection::PageInfo::of(&slice);
                let edges = slice
                    .rows
                    .into_iter()
                    .map(|(cursor, row)| $edge {
                        cursor,
                        node: <$node>::from(row),
                    })
                    .collect();
                Self {
                    edges,
                    page_info,
                    total,
                }
            }
        }

        #[async_graphql::Object]
        impl $conn {
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }

            async fn nodes(&self) -> Vec<&$node> {
                self.edges.iter().map(|e| &e.node).collect()
            }

            async fn page_info(&self) -> &$crate::graphql::connection::PageInfo {
                &self.page_info
            }

            /// How many rows match the filter, across all pages.
            #[graphql(directive = crate::graphql::limits::costs::cost::apply(crate::graphql::limits::STATEMENT))]
            async fn total_count(
                &self,
                ctx: &async_graphql::Context<'_>,
            ) -> async_graphql::Result<i32> {
                Ok($crate::graphql::connection::count_to_int(
                    self.total.resolve(ctx).await?,
                ))
            }
        }
    };
}

pub(crate) use connection;
