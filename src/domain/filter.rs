//! Per-field filter operators (`eq`, `in`, `contains`, `startsWith`, `gt`…, `isNull`) and
//! their translation to SQL conditions. Text matching is case-insensitive on both backends
//! (LOWER(col) LIKE LOWER(pattern), with the pattern's own `%` and `_` escaped).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr, SimpleExpr};
use sea_orm::{ColumnTrait, Value};

use super::{Error, Result};

/// Most values an `in` list may carry.
pub const MAX_IN_VALUES: usize = 100;
/// Deepest nesting of `and` / `or` / `not`.
pub const MAX_NESTING: usize = 5;
/// Most operands of one `and` / `or`.
pub const MAX_OPERANDS: usize = 20;
/// Longest text a filter compares with (SQLite refuses long LIKE patterns, and no stored
/// value a filter can match is longer than a subject).
pub const MAX_FILTER_TEXT: usize = 500;
/// Timestamps a filter may compare with: what both databases can represent.
const FILTER_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// The schema's name of a column (`last_activity_at` -> `lastActivityAt`), for messages.
fn field_name<C: ColumnTrait>(column: C) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in column.as_str().chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Refuses filter text the database would choke on, naming the filter field.
pub fn check_text(field: &str, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::BadArgument(format!(
            "filter `{field}` contains a NUL character"
        )));
    }
    if text.chars().count() > MAX_FILTER_TEXT {
        return Err(Error::BadArgument(format!(
            "filter `{field}` takes at most {MAX_FILTER_TEXT} characters"
        )));
    }
    Ok(())
}

fn check_time(field: &str, t: &DateTime<Utc>) -> Result<Value> {
    if !FILTER_YEARS.contains(&chrono::Datelike::year(t)) {
        return Err(Error::BadArgument(format!(
            "filter `{field}` takes timestamps between the years 1 and 9999"
        )));
    }
    Ok(Value::from(*t))
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TextOps {
    pub eq: Option<String>,
    pub in_: Option<Vec<String>>,
    pub contains: Option<String>,
    pub starts_with: Option<String>,
    pub is_null: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TimeOps {
    pub eq: Option<DateTime<Utc>>,
    pub gt: Option<DateTime<Utc>>,
    pub gte: Option<DateTime<Utc>>,
    pub lt: Option<DateTime<Utc>>,
    pub lte: Option<DateTime<Utc>>,
    pub is_null: Option<bool>,
}

/// Equality operators over ids and enumerations (stored as their text names).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct EqOps {
    pub eq: Option<String>,
    pub in_: Option<Vec<String>>,
    pub is_null: Option<bool>,
}

/// Most conditions one filter holds, all levels together: the 20 operands and 5 levels
/// allowed to each list would otherwise multiply into thousands.
pub const MAX_TERMS: usize = 100;
/// Most values one filter binds (`in` lists included): far below the parameter limits of
/// both databases.
pub const MAX_VALUES: usize = 1_000;
/// Most `search` terms in one filter: each scans the long text columns of every row.
pub const MAX_SEARCHES: usize = 2;

/// What a whole filter asks of the database, counted before any SQL is built.
#[derive(Clone, Copy, Debug, Default)]
pub struct Size {
    terms: usize,
    values: usize,
    searches: usize,
}

impl Size {
    fn term(&mut self, values: usize) {
        self.terms = self.terms.saturating_add(1);
        self.values = self.values.saturating_add(values);
    }

    pub fn text(&mut self, ops: &Option<TextOps>) {
        if let Some(ops) = ops {
            for present in [
                ops.eq.is_some(),
                ops.contains.is_some(),
                ops.starts_with.is_some(),
            ] {
                if present {
                    self.term(1);
                }
            }
            if let Some(values) = &ops.in_ {
                self.term(values.len());
            }
            if ops.is_null.is_some() {
                self.term(0);
            }
        }
    }

    pub fn time(&mut self, ops: &Option<TimeOps>) {
        if let Some(ops) = ops {
            let bounds = [ops.eq, ops.gt, ops.gte, ops.lt, ops.lte];
            for _ in bounds.iter().flatten() {
                self.term(1);
            }
            if ops.is_null.is_some() {
                self.term(0);
            }
        }
    }

    pub fn eq(&mut self, ops: &Option<EqOps>) {
        if let Some(ops) = ops {
            if ops.eq.is_some() {
                self.term(1);
            }
            if let Some(values) = &ops.in_ {
                self.term(values.len());
            }
            if ops.is_null.is_some() {
                self.term(0);
            }
        }
    }

    /// A free-text term over `columns` columns.
    pub fn search(&mut self, text: &Option<String>, columns: usize) {
        if text.is_some() {
            self.searches = self.searches.saturating_add(1);
            for _ in 0..columns {
                self.term(1);
            }
        }
    }

    /// Any other single condition (`tag`, `deleted`).
    pub fn other(&mut self, present: bool) {
        if present {
            self.term(1);
        }
    }

    pub fn check(&self) -> Result<()> {
        if self.terms > MAX_TERMS || self.values > MAX_VALUES {
            return Err(Error::BadArgument(format!(
                "a filter holds at most {MAX_TERMS} conditions and {MAX_VALUES} values in all"
            )));
        }
        if self.searches > MAX_SEARCHES {
            return Err(Error::BadArgument(format!(
                "a filter holds at most {MAX_SEARCHES} `search` terms"
            )));
        }
        Ok(())
    }
}

/// Escapes LIKE metacharacters so user text matches literally.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn lower(col: SimpleExpr) -> SimpleExpr {
    Func::lower(col).into()
}

/// `col` contains `needle`, case-insensitively.
pub fn contains(col: SimpleExpr, needle: &str) -> SimpleExpr {
    like_ignoring_case(col, needle, "%", "%")
}

/// `col LIKE before || needle || after`, ignoring case. SQLite's `LOWER` folds ASCII letters
/// only, so the text as given is matched too: a needle with the stored case of a non-ASCII
/// letter (`Émile`) still matches there.
fn like_ignoring_case(col: SimpleExpr, needle: &str, before: &str, after: &str) -> SimpleExpr {
    let folded = format!("{before}{}{after}", like_escape(&needle.to_lowercase()));
    let given = format!("{before}{}{after}", like_escape(needle));
    let same = given == folded;
    let folded_matches = lower(col.clone()).like(LikeExpr::new(folded).escape('\\'));
    if same {
        return folded_matches;
    }
    folded_matches.or(col.like(LikeExpr::new(given).escape('\\')))
}

fn check_in(field: &str, values: &[String]) -> Result<()> {
    for v in values {
        check_text(field, v)?;
    }
    if values.len() > MAX_IN_VALUES {
        return Err(Error::BadArgument(format!(
            "an `in` filter takes at most {MAX_IN_VALUES} values"
        )));
    }
    Ok(())
}

fn null_check(col: SimpleExpr, is_null: Option<bool>) -> Option<SimpleExpr> {
    is_null.map(|yes| {
        if yes {
            col.is_null()
        } else {
            col.is_not_null()
        }
    })
}

impl TextOps {
    pub fn condition<C: ColumnTrait>(&self, column: C) -> Result<Condition> {
        let field = field_name(column);
        let col = || Expr::col(column);
        let mut cond = Condition::all();
        if let Some(v) = &self.eq {
            check_text(&field, v)?;
            cond = cond.add(col().eq(v.clone()));
        }
        if let Some(vs) = &self.in_ {
            check_in(&field, vs)?;
            cond = cond.add(col().is_in(vs.iter().cloned()));
        }
        if let Some(v) = &self.contains {
            check_text(&field, v)?;
            cond = cond.add(contains(col(), v));
        }
        if let Some(v) = &self.starts_with {
            check_text(&field, v)?;
            cond = cond.add(like_ignoring_case(col(), v, "", "%"));
        }
        if let Some(e) = null_check(col(), self.is_null) {
            cond = cond.add(e);
        }
        Ok(cond)
    }
}

impl TimeOps {
    pub fn condition<C: ColumnTrait>(&self, column: C) -> Result<Condition> {
        let field = field_name(column);
        let col = || Expr::col(column);
        let val = |t: &DateTime<Utc>| check_time(&field, t);
        let mut cond = Condition::all();
        if let Some(t) = &self.eq {
            cond = cond.add(col().eq(val(t)?));
        }
        if let Some(t) = &self.gt {
            cond = cond.add(col().gt(val(t)?));
        }
        if let Some(t) = &self.gte {
            cond = cond.add(col().gte(val(t)?));
        }
        if let Some(t) = &self.lt {
            cond = cond.add(col().lt(val(t)?));
        }
        if let Some(t) = &self.lte {
            cond = cond.add(col().lte(val(t)?));
        }
        if let Some(e) = null_check(col(), self.is_null) {
            cond = cond.add(e);
        }
        Ok(cond)
    }
}

impl EqOps {
    pub fn condition<C: ColumnTrait>(&self, column: C) -> Result<Condition> {
        let field = field_name(column);
        let col = || Expr::col(column);
        let mut cond = Condition::all();
        if let Some(v) = &self.eq {
            check_text(&field, v)?;
            cond = cond.add(col().eq(v.clone()));
        }
        if let Some(vs) = &self.in_ {
            check_in(&field, vs)?;
            cond = cond.add(col().is_in(vs.iter().cloned()));
        }
        if let Some(e) = null_check(col(), self.is_null) {
            cond = cond.add(e);
        }
        Ok(cond)
    }
}

/// Adds `ops` on `column` to `cond` when the filter names that field.
pub fn add_text<C: ColumnTrait>(
    cond: Condition,
    ops: &Option<TextOps>,
    column: C,
) -> Result<Condition> {
    Ok(match ops {
        Some(ops) => cond.add(ops.condition(column)?),
        None => cond,
    })
}

pub fn add_time<C: ColumnTrait>(
    cond: Condition,
    ops: &Option<TimeOps>,
    column: C,
) -> Result<Condition> {
    Ok(match ops {
        Some(ops) => cond.add(ops.condition(column)?),
        None => cond,
    })
}

pub fn add_eq<C: ColumnTrait>(
    cond: Condition,
    ops: &Option<EqOps>,
    column: C,
) -> Result<Condition> {
    Ok(match ops {
        Some(ops) => cond.add(ops.condition(column)?),
        None => cond,
    })
}

/// Combines the boolean operators of a filter, bounding their depth and width so that a
/// hostile filter cannot build an enormous statement.
pub fn combine<F>(
    mut cond: Condition,
    and: &[F],
    or: &[F],
    not: Option<&F>,
    depth: usize,
    each: impl Fn(&F, usize) -> Result<Condition>,
) -> Result<Condition> {
    if depth > MAX_NESTING {
        return Err(Error::BadArgument(format!(
            "filters nest at most {MAX_NESTING} levels of and/or/not"
        )));
    }
    if and.len() > MAX_OPERANDS || or.len() > MAX_OPERANDS {
        return Err(Error::BadArgument(format!(
            "`and` and `or` take at most {MAX_OPERANDS} filters"
        )));
    }
    for f in and {
        cond = cond.add(each(f, depth + 1)?);
    }
    if !or.is_empty() {
        let mut any = Condition::any();
        for f in or {
            any = any.add(each(f, depth + 1)?);
        }
        cond = cond.add(any);
    }
    if let Some(f) = not {
        cond = cond.add(each(f, depth + 1)?.not());
    }
    Ok(cond)
}
