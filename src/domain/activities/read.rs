//! Activity reads: by id, batched by ids, keyset-paginated lists, and the nested
//! `Customer.activities` connection for many customers in one statement.

use std::collections::HashMap;

use entity::activities;
use sea_orm::sea_query::{
    Alias, Condition, Expr, ExprTrait, JoinType, Query, QueryStatementBuilder, SelectStatement,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, IdenStatic, PaginatorTrait, QueryFilter, QueryResult,
    QuerySelect, QueryTrait,
};

use super::scope::live;
use super::{Activity, ActivityFilter, ActivityQuery};
use crate::domain::aggregate;
use crate::domain::filter::{Size, add_eq, add_text, add_time, check_text, combine, contains};
use crate::domain::ids::{ActivityId, CustomerId};
use crate::domain::page::{Page, Slice, SortSpec};
use crate::domain::projection::{ArrayRows, json_rows, value_at};
use crate::domain::{Result, Tenant};

use activities::Column as C;

/// A live activity of the tenant, or `None` (whether it never existed, was deleted, or
/// is another tenant's: the caller cannot tell these apart).
pub async fn get(t: &Tenant, id: &ActivityId) -> Result<Option<Activity>> {
    aggregate::get(t, id).await
}

/// The tenant's live activitys among `ids`, in no particular order.
pub async fn by_ids(t: &Tenant, ids: &[ActivityId]) -> Result<Vec<Activity>> {
    aggregate::by_ids(t, ids).await
}

pub async fn list(t: &Tenant, query: &ActivityQuery) -> Result<Slice<Activity>> {
    aggregate::list(
        t,
        filtered(t, &query.filter)?,
        query.order.spec(),
        &query.page,
        query.projection,
    )
    .await
}

pub async fn count(t: &Tenant, filter: &ActivityFilter) -> Result<u64> {
    Ok(filtered(t, filter)?.count(t.db()).await?)
}

/// One page of activities for each of many customers (in their order), in a single statement
/// that fetches only the projected columns. Each customer's page is a subquery that reads
/// just its rows through the `(org_id, customer_id, …)` index and stops at the page size,
/// rather than ranking every child row; the statement count does not grow with the number of
/// parents, and no row beyond a page is decoded. Parents are given by position, so a fetched
/// row names its customer by a number, not by a copy of the id to decode.
///
/// Each page comes back folded into one row per customer, since every row a statement
/// returns costs the server more than its cells: PostgreSQL aggregates each column into an
/// array (`LATERAL`; 500 rows of a 50 × 10 read were a third of its instructions, callgrind),
/// SQLite into one JSON array (each row crossed from sqlx's worker thread on its own: 191 →
/// 435 nested reads/s). Folding orders by the page's own order, which the page's subquery
/// therefore selects.
pub async fn list_for_customers(
    t: &Tenant,
    customer_ids: &[CustomerId],
    query: &ActivityQuery,
) -> Result<Vec<Slice<Activity>>> {
    let nesting = Nesting::new(t, query)?;
    if customer_ids.is_empty() {
        return Ok(Vec::new());
    }
    let parents = Alias::new("parents");
    let (position, parent) = (Alias::new("column1"), Alias::new("column2"));
    let mut outer = Query::select();
    outer.column((parents.clone(), position)).from_values(
        customer_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (i32::try_from(i).unwrap_or(i32::MAX), id.as_str().to_owned())),
        parents.clone(),
    );
    nesting.attach(&mut outer, parents, parent);
    // The statement wraps `filtered(t, …)`, the tenant's rows.
    let backend = t.db().get_database_backend();
    let rows = t.db().query_all_raw(backend.build(&outer)).await?;
    let mut out: Vec<Slice<Activity>> = customer_ids.iter().map(|_| Slice::empty()).collect();
    for row in &rows {
        let at: i32 = value_at(row, 0)?;
        let at = usize::try_from(at).unwrap_or(usize::MAX);
        if let (Some(id), Some(slot)) = (customer_ids.get(at), out.get_mut(at)) {
            *slot = nesting.decode(row, 1, id)?;
        }
    }
    Ok(out)
}

/// A nested page of activities for each row of a statement over customers (the parents),
/// folded into the parent's row: the page read by `query`, validated before any statement.
pub struct Nesting {
    /// The tenant's activities the query's filter picks (its size checked).
    filtered: sea_orm::Select<activities::Entity>,
    spec: SortSpec<C>,
    page: Page,
    /// The columns folded, in the table's order, and whether a row is one cell.
    folded: super::FoldedRows,
    /// Whether the records show their customer (resolved by `customer`).
    with_customer: bool,
    backend: DbBackend,
}

impl Nesting {
    pub fn new(t: &Tenant, query: &ActivityQuery) -> Result<Self> {
        let spec = query.order.spec();
        let page = query.page.validate(&spec)?;
        // The customer is the row's parent, not fetched.
        let fetched = page
            .projection(&spec, query.projection)
            .without(C::CustomerId)
            .or(C::Id);
        Ok(Self {
            filtered: filtered(t, &query.filter)?,
            spec,
            page,
            folded: super::FoldedRows::new(fetched),
            with_customer: query.projection.has(C::CustomerId),
            backend: t.db().get_database_backend(),
        })
    }

    /// Adds each parent's folded page to `outer`, whose parents are `parents` with their id
    /// in the column `parent_id`: on PostgreSQL a `LATERAL` aggregate (a count, then an
    /// array per column), on SQLite one JSON array.
    pub fn attach(&self, outer: &mut SelectStatement, parents: Alias, parent_id: Alias) {
        let (spec, page) = (&self.spec, &self.page);
        // PostgreSQL's aggregates order by the sort columns, so the page selects them.
        let ordered = match self.backend {
            DbBackend::Postgres => self.folded.fetched.with(spec.column).with(spec.id),
            _ => self.folded.fetched,
        };
        let mut per_parent = self
            .filtered
            .clone()
            .select_only()
            .columns(ordered.columns())
            .filter(Expr::col((activities::Entity, C::CustomerId)).equals((parents, parent_id)))
            .filter(spec.bounds(page))
            .into_query();
        spec.order(&mut per_parent, page.backward);
        per_parent.limit(page.fetch());
        let pages = Alias::new("pages");
        let mut folded = Query::select();
        if self.backend == DbBackend::Postgres {
            let order = spec.order_sql(page.backward);
            folded.expr(Expr::cust("count(*)"));
            for column in self.folded.fetched.columns() {
                folded.expr(Expr::cust(format!(
                    "array_agg(\"{}\" ORDER BY {order})",
                    column.as_str()
                )));
            }
        } else {
            let cells = self
                .folded
                .fetched
                .columns()
                .map(|c| format!("\"{}\"", c.as_str()))
                .collect::<Vec<_>>()
                .join(", ");
            // No `ORDER BY` in the aggregate: SQLite runs a FROM-subquery that has a
            // `LIMIT` as a co-routine, in its own order, and never flattens it into an
            // aggregate query, so the rows come in page order (the pagination tests check
            // it, on the SQLite bundled with this build). Sorting them again per parent
            // was an ephemeral index each and half of SQLite's work in a nested read.
            // A row of one column is folded as its cell (`FoldedRows::single_cell`).
            let row = match self.folded.single {
                true => cells,
                false => format!("json_array({cells})"),
            };
            folded.expr(Expr::cust(format!("json_group_array({row})")));
        }
        folded.from_subquery(per_parent, pages.clone());
        if self.backend == DbBackend::Postgres {
            outer.expr(Expr::cust("\"pages\".*")).join_lateral(
                JoinType::InnerJoin,
                folded,
                pages,
                Expr::cust("TRUE"),
            );
        } else {
            outer.expr(Expr::SubQuery(
                None,
                Box::new(folded.into_sub_query_statement()),
            ));
        }
    }

    /// The page `attach` folded into `row` from position `first` on, of the customer `id`.
    pub fn decode(
        &self,
        row: &QueryResult,
        first: usize,
        id: &CustomerId,
    ) -> Result<Slice<Activity>> {
        let (spec, page) = (&self.spec, &self.page);
        let with_customer = self.with_customer;
        // A page each (up to a point: most customers have few activities). Each record goes
        // straight into its page with its cursor: a record is a few hundred bytes, and every
        // pass over the page copies them all.
        let capacity = usize::try_from(page.fetch()).unwrap_or(0).min(32);
        let mut records = Vec::with_capacity(capacity);
        let mut keep = |mut a: Activity| {
            if with_customer {
                a.customer_id = id.clone();
            }
            records.push((page.cursor(spec, &a), a));
        };
        if self.backend == DbBackend::Postgres {
            let count: i64 = value_at(row, first)?;
            let mut arrays = ArrayRows::new(row, first + 1);
            for _ in 0..count {
                keep(super::decode_arrays(self.folded.fetched, &mut arrays)?);
            }
        } else {
            // `[]` for a customer without activities.
            let folded: String = value_at(row, first)?;
            json_rows(&folded, &self.folded, keep)?;
        }
        Ok(page.finish(records))
    }
}

/// How many activities match `filter` for each of many customers, in one statement.
pub async fn count_for_customers(
    t: &Tenant,
    customer_ids: &[CustomerId],
    filter: &ActivityFilter,
) -> Result<HashMap<String, u64>> {
    let counts: Vec<(String, i64)> = filtered(t, filter)?
        .filter(C::CustomerId.is_in(customer_ids.iter().cloned()))
        .select_only()
        .column(C::CustomerId)
        .column_as(C::Id.count(), "n")
        .group_by(C::CustomerId)
        .into_tuple()
        .all(t.db())
        .await?;
    Ok(counts
        .into_iter()
        .map(|(id, n)| (id, u64::try_from(n).unwrap_or(0)))
        .collect())
}

fn filtered(t: &Tenant, filter: &ActivityFilter) -> Result<sea_orm::Select<activities::Entity>> {
    let mut size = Size::default();
    measure(filter, &mut size);
    size.check()?;
    Ok(live(t).filter(condition(filter, 0)?))
}

/// Counts what the whole filter asks for (its depth is bounded before the domain).
fn measure(f: &ActivityFilter, size: &mut Size) {
    for eq in [&f.id, &f.customer_id, &f.kind, &f.author_id] {
        size.eq(eq);
    }
    for text in [&f.subject, &f.source] {
        size.text(text);
    }
    for time in [
        &f.occurred_at,
        &f.due_at,
        &f.completed_at,
        &f.created_at,
        &f.updated_at,
    ] {
        size.time(time);
    }
    size.search(&f.search, 2);
    for inner in f.and.iter().chain(&f.or).chain(f.not.as_deref()) {
        measure(inner, size);
    }
}

fn condition(f: &ActivityFilter, depth: usize) -> Result<Condition> {
    let mut cond = Condition::all();
    cond = add_eq(cond, &f.id, C::Id)?;
    cond = add_eq(cond, &f.customer_id, C::CustomerId)?;
    cond = add_eq(cond, &f.kind, C::Kind)?;
    cond = add_text(cond, &f.subject, C::Subject)?;
    cond = add_eq(cond, &f.author_id, C::AuthorId)?;
    cond = add_text(cond, &f.source, C::Source)?;
    cond = add_time(cond, &f.occurred_at, C::OccurredAt)?;
    cond = add_time(cond, &f.due_at, C::DueAt)?;
    cond = add_time(cond, &f.completed_at, C::CompletedAt)?;
    cond = add_time(cond, &f.created_at, C::CreatedAt)?;
    cond = add_time(cond, &f.updated_at, C::UpdatedAt)?;
    if let Some(text) = f.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        check_text("search", text)?;
        cond = cond.add(
            Condition::any()
                .add(contains(Expr::col(C::Subject), text))
                .add(contains(Expr::col(C::Body), text)),
        );
    }
    combine(cond, &f.and, &f.or, f.not.as_deref(), depth, condition)
}
