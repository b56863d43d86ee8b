//! Relay connections: `edges { cursor node }`, `nodes`, `pageInfo`, and a lazy `totalCount`
//! that costs a query only when asked for.

use async_graphql::SimpleObject;

use crate::domain::page::Slice;

#[derive(SimpleObject, Clone, Debug, Default)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub has_previous_page: bool,
    pub start_cursor: Option<String>,
    pub end_cursor: Option<String>,
}

impl PageInfo {
    pub fn of<T>(slice: &Slice<T>) -> Self {
        Self {
            has_next_page: slice.has_next_page,
            has_previous_page: slice.has_previous_page,
            start_cursor: slice.rows.first().map(|(c, _)| c.clone()),
            end_cursor: slice.rows.last().map(|(c, _)| c.clone()),
        }
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
            pub cursor: String,
            pub node: $node,
        }

        #[async_graphql::Object]
        impl $edge {
            /// Opaque; pass it as `after` or `before`.
            async fn cursor(&self) -> &str {
                &self.cursor
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
