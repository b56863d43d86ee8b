//! Keyset pagination shared by every list: page arguments, opaque cursors, the ordering and
//! the "rows after this cursor" condition for a sort column that may hold NULLs.
//!
//! The position of a row is the tuple (sort value IS NULL, sort value, id): NULLs sort last in
//! the declared direction and the id breaks ties, so every position is unique and a page never
//! repeats or skips a row, whatever is inserted between two requests. Nothing uses OFFSET.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Order, SelectStatement, SimpleExpr};
use sea_orm::{ColumnTrait, EntityTrait};
use serde::{Deserialize, Serialize};

use super::projection::Projection;
use super::{Error, Result};

pub const DEFAULT_PAGE_SIZE: u64 = 20;
pub const MAX_PAGE_SIZE: u64 = 100;

/// The Relay arguments as the client sent them, and what of the page it reads.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
    pub reads: PageReads,
}

/// What a reader of a page looks at besides its rows. Cursors cost the sort value and id of
/// every row (fetched, decoded, copied); knowing whether another page follows costs one
/// more row. Most reads select neither, and a nested page of 50 x 10 is all rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageReads {
    /// Any cursor: of an edge, or the page's start or end.
    pub cursors: bool,
    /// Whether a page follows in the direction read (`hasNextPage` forward,
    /// `hasPreviousPage` backward).
    pub beyond: bool,
}

impl Default for PageReads {
    /// Everything, for reads whose use is not known.
    fn default() -> Self {
        Self {
            cursors: true,
            beyond: true,
        }
    }
}

/// Which kind of value a sort column holds, so a cursor can be decoded back into a bindable
/// value of the right type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SortValueKind {
    Text,
    Time,
}

/// One orderable field of a list: its column, whether it may be NULL, and the name cursors
/// carry so that a cursor from one ordering is refused by another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SortSpec<C> {
    pub name: &'static str,
    pub column: C,
    pub id: C,
    pub kind: SortValueKind,
    pub nullable: bool,
    pub descending: bool,
}

/// A validated page request: which way, how many, and the cursor bounds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Page {
    pub backward: bool,
    pub limit: u64,
    pub after: Option<Cursor>,
    pub before: Option<Cursor>,
    pub reads: PageReads,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort field the cursor belongs to.
    #[serde(rename = "o")]
    pub order: String,
    /// The sort value: a string, microseconds since the epoch, or null.
    #[serde(rename = "v")]
    pub value: CursorValue,
    #[serde(rename = "i")]
    pub id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CursorValue {
    Null,
    Micros(i64),
    Text(String),
}

impl CursorValue {
    /// A time as a cursor holds it.
    pub fn at(time: Option<DateTime<Utc>>) -> Self {
        time.map_or(Self::Null, |t| Self::Micros(t.timestamp_micros()))
    }
}

/// A record of a list: where it sits in an ordering of the list.
pub trait Sortable {
    type Column: Copy;
    /// Its value of the sort column `column`, as a cursor holds it.
    fn sort_value(&self, column: Self::Column) -> CursorValue;
    /// The id that breaks ties between equal sort values.
    fn sort_id(&self) -> &str;
}

/// The position of a row in its ordering, encoded into the opaque cursor only when a client
/// asks for it: most reads select no cursor for most rows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RowCursor {
    #[serde(rename = "o")]
    order: &'static str,
    #[serde(rename = "v")]
    value: CursorValue,
    #[serde(rename = "i")]
    id: String,
}

impl RowCursor {
    /// The cursor of a row read where nobody reads cursors (`PageReads::cursors` is off):
    /// it holds nothing and costs no allocation.
    pub fn unread() -> Self {
        Self {
            order: "",
            value: CursorValue::Null,
            id: String::new(),
        }
    }

    /// The opaque cursor, as `Cursor::decode` reads it back.
    pub fn encode(&self) -> String {
        // Serialising a plain struct of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }
}

impl Cursor {
    fn decode(raw: &str, arg: &str) -> Result<Self> {
        let bad = || Error::BadArgument(format!("`{arg}` is not a valid cursor"));
        if raw.len() > 2048 {
            return Err(bad());
        }
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        let cursor: Self = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        // A forged cursor must not carry what the database would refuse to compare with.
        let fits = !cursor.id.contains('\0')
            && match &cursor.value {
                CursorValue::Null => true,
                CursorValue::Text(s) => !s.contains('\0'),
                CursorValue::Micros(us) => DateTime::<Utc>::from_timestamp_micros(*us)
                    .is_some_and(|t| (1..=9999).contains(&chrono::Datelike::year(&t))),
            };
        if !fits {
            return Err(bad());
        }
        Ok(cursor)
    }
}

/// A fetched page: rows in the requested order, each with its cursor.
#[derive(Clone, Debug)]
pub struct Slice<T> {
    pub rows: Vec<(RowCursor, T)>,
    pub has_next_page: bool,
    pub has_previous_page: bool,
}

impl<T> Slice<T> {
    /// No rows, and no page on either side.
    pub fn empty() -> Self {
        Self {
            rows: Vec::new(),
            has_next_page: false,
            has_previous_page: false,
        }
    }
}

impl PageArgs {
    pub fn validate<C>(&self, sort: &SortSpec<C>) -> Result<Page> {
        let limit = |n: i32, arg: &str| {
            u64::try_from(n)
                .ok()
                .filter(|n| *n <= MAX_PAGE_SIZE)
                .ok_or_else(|| {
                    Error::BadArgument(format!("`{arg}` must be between 0 and {MAX_PAGE_SIZE}"))
                })
        };
        let (backward, limit) = match (self.first, self.last) {
            (Some(_), Some(_)) => {
                return Err(Error::BadArgument(
                    "pass either `first` or `last`, not both".into(),
                ));
            }
            (Some(n), None) => (false, limit(n, "first")?),
            (None, Some(n)) => (true, limit(n, "last")?),
            (None, None) => (
                self.before.is_some() && self.after.is_none(),
                DEFAULT_PAGE_SIZE,
            ),
        };
        let cursor = |raw: &Option<String>, arg: &str| -> Result<Option<Cursor>> {
            let Some(raw) = raw else { return Ok(None) };
            let cursor = Cursor::decode(raw, arg)?;
            let value_fits = match (&cursor.value, sort.kind) {
                (CursorValue::Null, _) => sort.nullable,
                (CursorValue::Micros(_), SortValueKind::Time) => true,
                (CursorValue::Text(_), SortValueKind::Text) => true,
                _ => false,
            };
            if cursor.order != sort.name || !value_fits {
                return Err(Error::BadArgument(format!(
                    "`{arg}` is a cursor of another ordering"
                )));
            }
            Ok(Some(cursor))
        };
        Ok(Page {
            backward,
            limit,
            after: cursor(&self.after, "after")?,
            before: cursor(&self.before, "before")?,
            reads: self.reads,
        })
    }
}

impl<C: ColumnTrait + Copy> SortSpec<C> {
    /// Appends ORDER BY for the page's direction: backward pages read the reversed order
    /// and are flipped back by `finish`.
    pub fn order(&self, query: &mut SelectStatement, backward: bool) {
        self.order_by(query, backward, Expr::col);
    }

    /// As `order`, on the columns of the table or subquery `table`.
    pub fn order_in(&self, query: &mut SelectStatement, backward: bool, table: &Alias) {
        self.order_by(query, backward, |column| Expr::col((table.clone(), column)));
    }

    fn order_by(&self, query: &mut SelectStatement, backward: bool, col: impl Fn(C) -> SimpleExpr) {
        for (column, is_null, descending) in self.order_terms(backward) {
            let dir = if descending { Order::Desc } else { Order::Asc };
            let expr = col(column);
            query.order_by_expr(if is_null { expr.is_null() } else { expr }, dir);
        }
    }

    /// The same ordering as SQL text over the unqualified column names, for an ORDER BY
    /// inside an aggregate (which the query builder cannot express). Names are the entity's
    /// own identifiers, never client text.
    pub fn order_sql(&self, backward: bool) -> String {
        self.order_terms(backward)
            .into_iter()
            .map(|(column, is_null, descending)| {
                let dir = if descending { "DESC" } else { "ASC" };
                let null = if is_null { " IS NULL" } else { "" };
                format!("\"{}\"{null} {dir}", column.as_str())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// (column, whether the term is `column IS NULL`, descending) for each ORDER BY term.
    fn order_terms(&self, backward: bool) -> Vec<(C, bool, bool)> {
        let descending = self.descending != backward;
        let mut terms = Vec::with_capacity(3);
        if self.nullable {
            terms.push((self.column, true, backward));
        }
        terms.push((self.column, false, descending));
        terms.push((self.id, false, descending));
        terms
    }

    /// The condition selecting the rows inside the page's cursor bounds.
    pub fn bounds(&self, page: &Page) -> Condition {
        let mut cond = Condition::all();
        if let Some(after) = &page.after {
            cond = cond.add(self.beyond(after, false));
        }
        if let Some(before) = &page.before {
            cond = cond.add(self.beyond(before, true));
        }
        cond
    }

    /// Rows strictly past `cursor` in the declared order, or in the reversed order when
    /// `reversed` (which also moves the NULL region to the front).
    fn beyond(&self, cursor: &Cursor, reversed: bool) -> Condition {
        let descending = self.descending != reversed;
        let past = |col: C, value: SimpleExpr| -> SimpleExpr {
            if descending {
                Expr::col(col).lt(value)
            } else {
                Expr::col(col).gt(value)
            }
        };
        let col = self.column;
        let id_past = past(self.id, Expr::val(cursor.id.clone()));
        let nulls_come_after = !reversed;
        match self.bind(&cursor.value) {
            Some(value) => {
                let mut same_region = Condition::any()
                    .add(past(col, value.clone()))
                    .add(Condition::all().add(Expr::col(col).eq(value)).add(id_past));
                if self.nullable {
                    same_region = Condition::all()
                        .add(Expr::col(col).is_not_null())
                        .add(same_region);
                    if nulls_come_after {
                        return Condition::any()
                            .add(same_region)
                            .add(Expr::col(col).is_null());
                    }
                }
                same_region
            }
            None => {
                let same_region = Condition::all().add(Expr::col(col).is_null()).add(id_past);
                if nulls_come_after {
                    same_region
                } else {
                    Condition::any()
                        .add(same_region)
                        .add(Expr::col(col).is_not_null())
                }
            }
        }
    }

    fn bind(&self, value: &CursorValue) -> Option<SimpleExpr> {
        match value {
            CursorValue::Null => None,
            CursorValue::Text(s) => Some(Expr::val(s.clone())),
            CursorValue::Micros(us) => {
                // Out-of-range values cannot come from our own cursors; clamp rather than fail.
                let time = DateTime::<Utc>::from_timestamp_micros(*us).unwrap_or_default();
                Some(Expr::val(time))
            }
        }
    }
}

impl Page {
    /// Turns up to `limit + 1` fetched rows (in the fetch order) into the page.
    pub fn finish<T>(&self, mut rows: Vec<(RowCursor, T)>) -> Slice<T> {
        let limit = usize::try_from(self.limit).unwrap_or(usize::MAX);
        let more = rows.len() > limit;
        rows.truncate(limit);
        if self.backward {
            rows.reverse();
            Slice {
                rows,
                has_next_page: self.before.is_some(),
                has_previous_page: more,
            }
        } else {
            Slice {
                rows,
                has_next_page: more,
                has_previous_page: self.after.is_some(),
            }
        }
    }

    /// How many rows to fetch: one more than the page when the reader asks whether another
    /// follows.
    pub fn fetch(&self) -> u64 {
        self.limit + u64::from(self.reads.beyond)
    }

    /// The columns a page of `projection` fetches: the cursor's too when cursors are read.
    pub fn projection<E: EntityTrait>(
        &self,
        spec: &SortSpec<E::Column>,
        projection: Projection<E>,
    ) -> Projection<E> {
        if self.reads.cursors {
            projection.with(spec.column).with(spec.id)
        } else {
            projection
        }
    }

    /// The cursor of a fetched row (of `self.projection(…)`), when cursors are read.
    pub fn cursor<R: Sortable>(&self, spec: &SortSpec<R::Column>, row: &R) -> RowCursor {
        if !self.reads.cursors {
            return RowCursor::unread();
        }
        RowCursor {
            order: spec.name,
            value: row.sort_value(spec.column),
            id: row.sort_id().to_owned(),
        }
    }
}
