//! Which columns of a table a read fetches. A page of fifty customers, each with ten
//! activities, decodes every column it fetches for every row, so the GraphQL layer names the
//! fields its query selects and only those columns travel and are decoded. Columns not
//! fetched hold defaults that nothing shows: no resolver runs for a field not selected.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use sea_orm::sqlx::postgres::PgHasArrayType;
use sea_orm::sqlx::{Decode, Postgres, Row, Type};
use sea_orm::{EntityTrait, IdenStatic, Iterable, QueryResult};
use serde::de::{DeserializeSeed, SeqAccess, Visitor};

use super::{Error, Result};

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

    pub fn without(self, column: E::Column) -> Self {
        Self::of(self.bits & !bit::<E>(column))
    }

    /// This, or only `column` when this is empty: a statement selects at least one column,
    /// even when its reader looks at none (`nodes { __typename }`, `totalCount`).
    pub fn or(self, column: E::Column) -> Self {
        if self.bits == 0 {
            Self::none().with(column)
        } else {
            self
        }
    }

    /// The columns as a set of bits, one per column: the same for the same columns.
    pub fn bits(self) -> u32 {
        self.bits
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
    pub fn reader<R>(self, row: R) -> Reader<E, R> {
        self.reader_from(row, 0)
    }

    /// A reader of the row's columns from position `first` on.
    pub fn reader_from<R>(self, row: R, first: usize) -> Reader<E, R> {
        Reader {
            bits: self.bits,
            row,
            column: 0,
            next: first,
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

pub struct Reader<E, R> {
    bits: u32,
    row: R,
    /// The table position of the column the next `get` reads.
    column: u32,
    /// The row position of the next fetched column.
    next: usize,
    entity: PhantomData<fn() -> E>,
}

impl<E: EntityTrait, R> Reader<E, R> {
    /// `column`'s value, or `default` when it was not fetched. Called for every column, in
    /// the table's order (so no lookup by name or position is needed per value).
    pub fn get<T>(&mut self, column: E::Column, default: T) -> Result<T>
    where
        R: Cell<T>,
    {
        Ok(self.value(column)?.unwrap_or(default))
    }

    /// `column`'s value through `f`, or `default` when it was not fetched: a column stored
    /// as text and read as something else costs nothing when nobody asked for it.
    pub fn map<T, U>(
        &mut self,
        column: E::Column,
        default: U,
        f: impl FnOnce(T) -> Result<U>,
    ) -> Result<U>
    where
        R: Cell<T>,
    {
        self.value(column)?.map_or(Ok(default), f)
    }

    fn value<T>(&mut self, column: E::Column) -> Result<Option<T>>
    where
        R: Cell<T>,
    {
        debug_assert_eq!(
            1u32 << self.column,
            bit::<E>(column),
            "columns read out of order"
        );
        let fetched = self.bits & (1u32 << self.column) != 0;
        self.column += 1;
        if !fetched {
            return Ok(None);
        }
        let at = self.next;
        self.next += 1;
        self.row.cell(at).map(Some)
    }
}

/// A fetched row's value at a position, as a `T`.
pub trait Cell<T> {
    fn cell(&mut self, at: usize) -> Result<T>;
}

impl<T> Cell<T> for &QueryResult
where
    T: sea_orm::TryGetable + for<'r> Decode<'r, Postgres> + Type<Postgres>,
{
    fn cell(&mut self, at: usize) -> Result<T> {
        // On PostgreSQL, sqlx's checked `try_get` compares each value's type with `T`'s
        // before decoding it: with SeaORM's wrapping, a fifth of the server's CPU for a
        // nested page of 500 rows (perf). The columns' types are the migration's, and a value
        // of another type still fails to decode (a wrong length or an invalid text).
        if let Some(row) = self.try_as_pg_row() {
            return row.try_get_unchecked(at).map_err(Error::internal);
        }
        Ok(self.try_get_by_index(at)?)
    }
}

/// The value at position `at` of a fetched row, decoded as `Cell` decodes it.
pub fn value_at<'r, T>(mut row: &'r QueryResult, at: usize) -> Result<T>
where
    &'r QueryResult: Cell<T>,
{
    row.cell(at)
}

/// The rows of a nested page that PostgreSQL folded into one array per column, from
/// position `first` of the fetched row on: row `i` of the page is element `i` of each
/// array. Each array is decoded once, when its column is first read, and its elements are
/// taken in order, one per read, so a reader reads the page row after row.
pub struct ArrayRows<'r> {
    row: &'r QueryResult,
    first: usize,
    /// Per folded column, what is left of its decoded array (a `vec::IntoIter` of the
    /// column's type).
    columns: Vec<Option<Box<dyn Any + Send>>>,
}

impl<'r> ArrayRows<'r> {
    pub fn new(row: &'r QueryResult, first: usize) -> Self {
        Self {
            row,
            first,
            columns: Vec::new(),
        }
    }

    /// The position of the first folded column in the fetched row.
    pub fn first(&self) -> usize {
        self.first
    }
}

impl<T> Cell<T> for &mut ArrayRows<'_>
where
    T: Send + 'static + for<'r> Decode<'r, Postgres> + Type<Postgres> + PgHasArrayType,
{
    fn cell(&mut self, at: usize) -> Result<T> {
        let column = at.checked_sub(self.first).ok_or_else(|| malformed(at))?;
        if self.columns.len() <= column {
            self.columns.resize_with(column + 1, || None);
        }
        let slot = self.columns.get_mut(column).ok_or_else(|| malformed(at))?;
        if slot.is_none() {
            let row = self.row.try_as_pg_row().ok_or_else(|| malformed(at))?;
            // NULL for a parent without rows (an aggregate over none), which nobody reads.
            let values: Option<Vec<T>> = row.try_get_unchecked(at).map_err(Error::internal)?;
            *slot = Some(Box::new(values.unwrap_or_default().into_iter()));
        }
        slot.as_mut()
            .and_then(|left| left.downcast_mut::<std::vec::IntoIter<T>>())
            .and_then(Iterator::next)
            .ok_or_else(|| malformed(at))
    }
}

/// Rows a statement folded into one JSON array of arrays, one array of cells per row (a
/// nested page fetched as one JSON value per parent, which costs one decoded row per parent,
/// not one per child). Each row is decoded as it is read, its cells straight into the
/// record: a tree of JSON values built first was a third of the cost of decoding a page.
pub fn json_rows<D: JsonRowDecoder>(
    text: &str,
    decoder: &D,
    each: impl FnMut(D::Record),
) -> Result<()> {
    use serde::de::Deserializer as _;
    let mut json = serde_json::Deserializer::from_str(text);
    json.deserialize_seq(JsonRows { decoder, each })?;
    json.end()?;
    Ok(())
}

/// Decodes one folded row from its cells.
pub trait JsonRowDecoder {
    type Record;

    /// Whether a row is folded as its one cell rather than an array of cells (which SQLite
    /// builds for each row, then parses again into the fold).
    fn single_cell(&self) -> bool;

    fn decode<'de, A: SeqAccess<'de>>(&self, cells: JsonCells<A>) -> Result<Self::Record>;
}

/// The cells of one folded row, read in order.
pub struct JsonCells<A>(A);

struct JsonRows<'d, D, F> {
    decoder: &'d D,
    each: F,
}

impl<'de, D: JsonRowDecoder, F: FnMut(D::Record)> Visitor<'de> for JsonRows<'_, D, F> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of rows")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut rows: A) -> Result<(), A::Error> {
        while let Some(record) = rows.next_element_seed(JsonRow(self.decoder))? {
            (self.each)(record);
        }
        Ok(())
    }
}

struct JsonRow<'d, D>(&'d D);

impl<'de, D: JsonRowDecoder> DeserializeSeed<'de> for JsonRow<'_, D> {
    type Value = D::Record;

    fn deserialize<De: serde::Deserializer<'de>>(self, de: De) -> Result<D::Record, De::Error> {
        if self.0.single_cell() {
            self.0
                .decode(JsonCells(OneCell(Some(de))))
                .map_err(serde::de::Error::custom)
        } else {
            de.deserialize_seq(self)
        }
    }
}

/// A row folded as its one cell, read as a row of one.
struct OneCell<De>(Option<De>);

impl<'de, De: serde::Deserializer<'de>> SeqAccess<'de> for OneCell<De> {
    type Error = De::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, De::Error> {
        self.0.take().map(|de| seed.deserialize(de)).transpose()
    }
}

impl<'de, D: JsonRowDecoder> Visitor<'de> for JsonRow<'_, D> {
    type Value = D::Record;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of cells")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, cells: A) -> Result<D::Record, A::Error> {
        self.0
            .decode(JsonCells(cells))
            .map_err(serde::de::Error::custom)
    }
}

impl<A> JsonCells<A> {
    fn next<'de, T: serde::Deserialize<'de>>(&mut self, at: usize) -> Result<T>
    where
        A: SeqAccess<'de>,
    {
        self.0
            .next_element::<T>()
            .ok()
            .flatten()
            .ok_or_else(|| malformed(at))
    }
}

/// A value of an aggregated row that is not of its column's type.
#[derive(Debug, thiserror::Error)]
#[error("an aggregated row holds no value of its column's type at position {0}")]
pub struct Malformed(usize);

fn malformed(at: usize) -> super::Error {
    super::Error::internal(Malformed(at))
}

impl<'de, A: SeqAccess<'de>> Cell<String> for JsonCells<A> {
    fn cell(&mut self, at: usize) -> Result<String> {
        self.next(at)
    }
}

impl<'de, A: SeqAccess<'de>> Cell<i32> for JsonCells<A> {
    fn cell(&mut self, at: usize) -> Result<i32> {
        self.next(at)
    }
}

/// PostgreSQL writes a `timestamptz` into JSON as RFC 3339; SQLite holds what sqlx stored,
/// RFC 3339 too.
impl<'de, A: SeqAccess<'de>> Cell<chrono::DateTime<chrono::Utc>> for JsonCells<A> {
    fn cell(&mut self, at: usize) -> Result<chrono::DateTime<chrono::Utc>> {
        let text: String = self.next(at)?;
        chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.to_utc())
            .map_err(|_| malformed(at))
    }
}

impl<'de, A: SeqAccess<'de>> Cell<Option<String>> for JsonCells<A> {
    fn cell(&mut self, at: usize) -> Result<Option<String>> {
        self.next(at)
    }
}

impl<'de, A: SeqAccess<'de>> Cell<Option<chrono::DateTime<chrono::Utc>>> for JsonCells<A> {
    fn cell(&mut self, at: usize) -> Result<Option<chrono::DateTime<chrono::Utc>>> {
        let text: Option<String> = self.next(at)?;
        text.map(|text| {
            chrono::DateTime::parse_from_rfc3339(&text)
                .map(|t| t.to_utc())
                .map_err(|_| malformed(at))
        })
        .transpose()
    }
}

/// A table whose rows can be read partially, straight into the record they hold (columns
/// not fetched hold defaults nothing shows).
pub trait Projected: EntityTrait {
    type Record;

    /// A row holding the projected columns, in the table's order.
    fn decode(projection: Projection<Self>, row: &QueryResult) -> Result<Self::Record> {
        Self::decode_after(projection, row, 0)
    }

    /// A row holding the projected columns in the table's order from position `first` on.
    fn decode_after(
        projection: Projection<Self>,
        row: &QueryResult,
        first: usize,
    ) -> Result<Self::Record>;
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
