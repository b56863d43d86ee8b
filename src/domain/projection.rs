//! Which columns of a table a read fetches. A page of fifty customers, each with ten
//! activities, decodes every column it fetches for every row, so the GraphQL layer names the
//! fields its query selects and only those columns travel and are decoded. Columns not
//! fetched hold defaults that nothing shows: no resolver runs for a field not selected.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use sea_orm::{EntityTrait, IdenStatic, Iterable, QueryResult};

use super::Result;

/// A set of `E`'s columns (at most 32).
pub struct Projection<E> {
    bits: u32,
    entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> Projection<E> {
    /// Every column: for reads whose result goes beyond what a query selects.
    pub fn all() -> Self {
        Self::of(u32::MAX)
    }

    /// No column yet.
    pub fn none() -> Self {
        Self::of(0)
    }

    fn of(bits: u32) -> Self {
        Self {
            bits,
            entity: PhantomData,
        }
    }

    pub fn with(self, column: E::Column) -> Self {
        Self::of(self.bits | bit::<E>(column))
    }

    pub fn has(self, column: E::Column) -> bool {
        self.bits & bit::<E>(column) != 0
    }

    /// The fetched columns, in the table's order: the order a fetched row holds them in.
    pub fn columns(self) -> impl Iterator<Item = E::Column> {
        E::Column::iter().filter(move |c| self.has(*c))
    }

    /// Reads the row's columns in order: each `get` takes the next fetched one, or gives
    /// the default of a column not fetched.
    pub fn reader(self, row: &QueryResult) -> Reader<'_, E> {
        Reader {
            bits: self.bits,
            row,
            column: 0,
            next: 0,
            entity: PhantomData,
        }
    }
}

fn bit<E: EntityTrait>(column: E::Column) -> u32 {
    let index = E::Column::iter()
        .position(|c| c.as_str() == column.as_str())
        .unwrap_or(0);
    1u32.checked_shl(index as u32).unwrap_or(0)
}

pub struct Reader<'a, E> {
    bits: u32,
    row: &'a QueryResult,
    /// The table position of the column the next `get` reads.
    column: u32,
    /// The row position of the next fetched column.
    next: usize,
    entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait> Reader<'_, E> {
    /// `column`'s value, or `default` when it was not fetched. Called for every column, in
    /// the table's order (so no lookup by name or position is needed per value).
    pub fn get<T: sea_orm::TryGetable>(&mut self, column: E::Column, default: T) -> Result<T> {
        debug_assert_eq!(
            1u32 << self.column,
            bit::<E>(column),
            "columns read out of order"
        );
        let fetched = self.bits & (1u32 << self.column) != 0;
        self.column += 1;
        if !fetched {
            return Ok(default);
        }
        let at = self.next;
        self.next += 1;
        Ok(self.row.try_get_by_index(at)?)
    }
}

/// A table whose rows can be read partially.
pub trait Projected: EntityTrait {
    /// A row holding the projected columns, in the table's order.
    fn decode(projection: Projection<Self>, row: &QueryResult) -> Result<Self::Model>;
}

impl<E> Clone for Projection<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Projection<E> {}

impl<E> PartialEq for Projection<E> {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}

impl<E> Eq for Projection<E> {}

impl<E> Hash for Projection<E> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.bits.hash(state);
    }
}

impl<E> fmt::Debug for Projection<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Projection({:#b})", self.bits)
    }
}

impl<E: EntityTrait> Default for Projection<E> {
    fn default() -> Self {
        Self::all()
    }
}

#[cfg(test)]
mod tests {
    use entity::activities::{self, Column as C};

    use super::*;

    #[test]
    fn every_column_has_a_bit_and_the_order_is_the_tables() {
        assert!(C::iter().count() <= 32);
        let all: Vec<C> = Projection::<activities::Entity>::all().columns().collect();
        assert_eq!(all.len(), C::iter().count());
        let p = Projection::<activities::Entity>::none()
            .with(C::Subject)
            .with(C::Id);
        let names: Vec<&str> = p.columns().map(|c| c.as_str()).collect();
        assert_eq!(names, ["id", "subject"]);
    }
}
