//! Activity reads: by id, batched by ids, keyset-paginated lists, and the nested
//! `Customer.activities` connection for many customers in one statement.

use std::collections::HashMap;

use entity::activities;
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, Query, QueryStatementBuilder};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, IdenStatic, ModelTrait, PaginatorTrait, QueryFilter,
    QuerySelect, QueryTrait,
};

use super::scope::live;
use super::{Activity, ActivityFilter, ActivityQuery};
use crate::domain::aggregate;
use crate::domain::filter::{Size, add_eq, add_text, add_time, check_text, combine, contains};
use crate::domain::ids::{ActivityId, CustomerId};
use crate::domain::page::Slice;
use crate::domain::projection::{JsonRow, ProjectedJson};
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

/// One page of activities for each of many customers, in a single statement that fetches
/// only the projected columns. Each customer's page is a correlated subquery that reads just
/// its rows through the `(org_id, customer_id, …)` index and stops at the page size, rather
/// than ranking every child row, and the database folds it into one JSON array: a row per
/// customer to decode, not one per activity (on SQLite each row crosses from sqlx's worker
/// thread on its own, and on PostgreSQL each is a message whose every cell is type-checked;
/// measured at 50 × 10, the aggregate is the cheaper read on both). The statement count does
/// not grow with the number of parents, and no row beyond a page is decoded.
pub async fn list_for_customers(
    t: &Tenant,
    customer_ids: &[CustomerId],
    query: &ActivityQuery,
) -> Result<HashMap<CustomerId, Slice<Activity>>> {
    let spec = query.order.spec();
    let page = query.page.validate(&spec)?;
    if customer_ids.is_empty() {
        return Ok(HashMap::new());
    }
    // The cursor needs the sort column; the customer is the row's parent, not fetched.
    let projection = query.projection.with(spec.column);
    let fetched = projection.without(C::CustomerId);
    let backend = t.db().get_database_backend();
    let parents = Alias::new("parents");
    let parent = Alias::new("column1");
    let mut per_parent = filtered(t, &query.filter)?
        .select_only()
        .columns(fetched.columns())
        .filter(
            Expr::col((activities::Entity, C::CustomerId))
                .equals((parents.clone(), parent.clone())),
        )
        .filter(spec.bounds(&page))
        .into_query();
    spec.order(&mut per_parent, page.backward);
    per_parent.limit(page.fetch());
    let cells = fetched
        .columns()
        .map(|c| format!("\"{}\"", c.as_str()))
        .collect::<Vec<_>>()
        .join(", ");
    let order = spec.order_sql(page.backward);
    let aggregate = match backend {
        DbBackend::Postgres => {
            format!("json_agg(json_build_array({cells}) ORDER BY {order})::text")
        }
        _ => format!("json_group_array(json_array({cells}) ORDER BY {order})"),
    };
    let mut folded = Query::select();
    folded
        .expr(Expr::cust(aggregate))
        .from_subquery(per_parent, Alias::new("page"));
    let mut outer = Query::select();
    outer
        .column((parents.clone(), parent))
        .expr(Expr::SubQuery(
            None,
            Box::new(folded.into_sub_query_statement()),
        ))
        .from_values(
            customer_ids.iter().map(|id| id.as_str().to_owned()),
            parents,
        );
    // The statement wraps `filtered(t, …)`, the tenant's rows.
    let rows = t.db().query_all_raw(backend.build(&outer)).await?;

    let mut pages = HashMap::with_capacity(customer_ids.len());
    for row in &rows {
        let customer: String = row.try_get_by_index(0)?;
        // PostgreSQL aggregates no rows to NULL, SQLite to `[]`.
        let folded: Option<String> = row.try_get_by_index(1)?;
        let cells: Vec<Vec<serde_json::Value>> = match folded {
            Some(json) => serde_json::from_str(&json)?,
            None => Vec::new(),
        };
        let mut fetched_rows = Vec::with_capacity(cells.len());
        for cells in cells {
            let mut m = activities::Entity::decode_json(fetched, JsonRow(cells))?;
            m.customer_id.clone_from(&customer);
            let cursor = spec.cursor(m.get(spec.column), &m.id);
            fetched_rows.push((cursor, m));
        }
        let slice = page.finish(fetched_rows).map(Activity::try_from)?;
        pages.insert(CustomerId::stored(customer), slice);
    }
    Ok(pages)
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
