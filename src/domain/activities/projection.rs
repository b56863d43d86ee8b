//! Which columns of an activity a read fetches. A nested page of activities under fifty
//! customers decodes every column it fetches for every row, so the GraphQL layer names the
//! fields its query selects and only those columns travel and are decoded; columns not
//! fetched hold defaults that nothing shows (no resolver runs for a field not selected).

use entity::activities::{self, Column as C};
use sea_orm::{Iterable, QueryResult};

use crate::domain::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Projection(u32);

impl Default for Projection {
    /// Every column: for reads whose result goes beyond what a query selects.
    fn default() -> Self {
        Self(u32::MAX)
    }
}

impl Projection {
    /// What every read needs: the id, and the customer that groups nested pages.
    pub fn minimal() -> Self {
        Self(0).with(C::Id).with(C::CustomerId)
    }

    pub fn with(self, column: C) -> Self {
        Self(self.0 | bit(column))
    }

    pub fn has(self, column: C) -> bool {
        self.0 & bit(column) != 0
    }

    /// The fetched columns, in the order a row holds them.
    pub fn columns(self) -> impl Iterator<Item = C> {
        C::iter().filter(move |c| self.has(*c))
    }

    /// The row of `result`, whose columns are `self.columns()` in that order.
    pub fn decode(self, result: &QueryResult) -> Result<activities::Model> {
        let mut index = 0;
        let mut next = |column: C| {
            let at = index;
            if self.has(column) {
                index += 1;
            }
            (self.has(column), at)
        };
        macro_rules! get {
            ($column:expr) => {{
                match next($column) {
                    (true, at) => result.try_get_by_index(at)?,
                    (false, _) => Default::default(),
                }
            }};
        }
        Ok(activities::Model {
            id: get!(C::Id),
            org_id: get!(C::OrgId),
            customer_id: get!(C::CustomerId),
            kind: match next(C::Kind) {
                (true, at) => result.try_get_by_index(at)?,
                // Any valid kind: not shown.
                (false, _) => "NOTE".to_owned(),
            },
            subject: get!(C::Subject),
            body: get!(C::Body),
            occurred_at: get!(C::OccurredAt),
            due_at: get!(C::DueAt),
            completed_at: get!(C::CompletedAt),
            author_id: get!(C::AuthorId),
            source: get!(C::Source),
            external_id: get!(C::ExternalId),
            version: get!(C::Version),
            created_at: get!(C::CreatedAt),
            updated_at: get!(C::UpdatedAt),
            deleted_at: get!(C::DeletedAt),
        })
    }
}

fn bit(column: C) -> u32 {
    1 << (column as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_has_a_bit_and_the_order_is_the_tables() {
        assert!(C::iter().count() <= 32);
        let all: Vec<C> = Projection::default().columns().collect();
        assert_eq!(all.len(), C::iter().count());
        let p = Projection::minimal().with(C::Subject);
        let names: Vec<String> = p.columns().map(|c| format!("{c:?}")).collect();
        assert_eq!(names, ["Id", "CustomerId", "Subject"]);
    }
}
