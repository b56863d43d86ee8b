//! Customer reads: by id, batched by ids (for loaders), keyset-paginated lists and counts.

use entity::{customer_external_ids, customers, social_profiles};
use sea_orm::sea_query::{Alias, Condition, Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityName, IdenStatic, PaginatorTrait, QueryFilter, QueryOrder,
};

use super::scope::scoped;
use super::{Customer, CustomerFilter, CustomerQuery, ExternalId, SocialProfile};
use crate::domain::activities::{self, Activity};
use crate::domain::aggregate;
use crate::domain::filter::{
    Size, add_eq, add_text, add_time, check_text, combine, contains, like_escape,
};
use crate::domain::ids::CustomerId;
use crate::domain::page::Slice;
use crate::domain::projection::{Projected, Projection};
use crate::domain::{Result, Tenant};

use customers::Column as C;

/// A live customer of the tenant, or `None` (whether it never existed, was deleted, or
/// is another tenant's: the caller cannot tell these apart).
/// Only the columns of `projection` (a query's selection) are read.
pub async fn get(
    t: &Tenant,
    id: &CustomerId,
    projection: Projection<entity::customers::Entity>,
) -> Result<Option<Customer>> {
    aggregate::get_projected(t, id, projection).await
}

/// The tenant's live customers among `ids`, in no particular order.
pub async fn by_ids(t: &Tenant, ids: &[CustomerId]) -> Result<Vec<Customer>> {
    aggregate::by_ids(t, ids).await
}

pub async fn list(t: &Tenant, query: &CustomerQuery) -> Result<Slice<Customer>> {
    aggregate::list(
        t,
        filtered(t, &query.filter)?,
        query.order.spec(),
        &query.page,
        query.projection,
    )
    .await
}

/// A page of customers, each with its page of activities (`nesting`), in one statement. On
/// PostgreSQL the customer page is the outer side of a `LATERAL` fold, and is ordered again
/// outside it; there one statement saves a round trip (and the ping sqlx sends when
/// a connection returns to its pool). On SQLite each customer's page is a subquery in the
/// page's own select list, run only for the rows the page returns, in its order: slightly
/// cheaper than two statements, the second binding every id of the page (4.62M → 4.56M
/// instructions per nested read, callgrind); wrapped as on PostgreSQL, it cost more than
/// two (nested reads 1,136 → 884 req/s).
pub async fn list_with_activities(
    t: &Tenant,
    query: &CustomerQuery,
    nesting: &activities::Nesting,
) -> Result<Slice<(Customer, Slice<Activity>)>> {
    let spec = query.order.spec();
    let page = query.page.validate(&spec)?;
    // The id is what the activities join on.
    let fetched = page.projection(&spec, query.projection).with(C::Id);
    let paged = fetched.with(spec.column).with(spec.id);
    let mut inner = aggregate::page_query(filtered(t, &query.filter)?, &spec, &page, paged);
    let backend = t.db().get_database_backend();
    // The columns each row holds before its folded page.
    let (statement, fetched) = if backend == sea_orm::DbBackend::Postgres {
        let parents = Alias::new("parents");
        let mut outer = Query::select();
        outer
            .columns(fetched.columns().map(|c| (parents.clone(), c)))
            .from_subquery(inner, parents.clone());
        nesting.attach(&mut outer, parents.clone(), Alias::new(C::Id.as_str()));
        spec.order_in(&mut outer, page.backward, &parents);
        (outer, fetched)
    } else {
        nesting.attach(
            &mut inner,
            Alias::new(customers::Entity.table_name()),
            Alias::new(C::Id.as_str()),
        );
        (inner, paged)
    };
    // The statement wraps `filtered(t, …)` on both levels, the tenant's rows.
    let fetched_rows = t.db().query_all_raw(backend.build(&statement)).await?;
    let first = fetched.columns().count();
    let mut rows = Vec::with_capacity(fetched_rows.len());
    for row in &fetched_rows {
        let customer = customers::Entity::decode(fetched, row)?;
        let nested = nesting.decode(row, first, &customer.id)?;
        rows.push((page.cursor(&spec, &customer), (customer, nested)));
    }
    Ok(page.finish(rows))
}

pub async fn count(t: &Tenant, filter: &CustomerFilter) -> Result<u64> {
    Ok(filtered(t, filter)?.count(t.db()).await?)
}

fn filtered(t: &Tenant, filter: &CustomerFilter) -> Result<sea_orm::Select<customers::Entity>> {
    // Live customers unless the top-level filter asks for the deleted ones.
    let deleted = filter.deleted.unwrap_or(false);
    let deleted_cond = if deleted {
        C::DeletedAt.is_not_null()
    } else {
        C::DeletedAt.is_null()
    };
    let private = filter.search_private;
    let mut size = Size::default();
    measure(filter, &mut size, private);
    size.check()?;
    Ok(scoped(t)
        .filter(deleted_cond)
        .filter(condition(filter, 0, private)?))
}

/// Counts what the whole filter asks for. Its depth is bounded already (input values nest
/// at most 32 levels before they reach the domain).
fn measure(f: &CustomerFilter, size: &mut Size, private: bool) {
    size.eq(&f.id);
    for text in [&f.name, &f.email, &f.phone, &f.company] {
        size.text(text);
    }
    size.eq(&f.lifecycle_stage);
    size.eq(&f.owner_id);
    for time in [&f.created_at, &f.updated_at, &f.last_activity_at] {
        size.time(time);
    }
    size.other(f.tag.is_some());
    size.other(f.deleted.is_some());
    size.search(&f.search, if private { 4 } else { 2 });
    for inner in f.and.iter().chain(&f.or).chain(f.not.as_deref()) {
        measure(inner, size, private);
    }
}

/// `private`: whether `search` may match email and phone (only for callers who may read them).
fn condition(f: &CustomerFilter, depth: usize, private: bool) -> Result<Condition> {
    let mut cond = Condition::all();
    cond = add_eq(cond, &f.id, C::Id)?;
    cond = add_text(cond, &f.name, C::Name)?;
    cond = add_text(cond, &f.email, C::Email)?;
    cond = add_text(cond, &f.phone, C::Phone)?;
    cond = add_text(cond, &f.company, C::Company)?;
    cond = add_eq(cond, &f.lifecycle_stage, C::LifecycleStage)?;
    cond = add_eq(cond, &f.owner_id, C::OwnerId)?;
    cond = add_time(cond, &f.created_at, C::CreatedAt)?;
    cond = add_time(cond, &f.updated_at, C::UpdatedAt)?;
    cond = add_time(cond, &f.last_activity_at, C::LastActivityAt)?;
    if let Some(tag) = &f.tag {
        check_text("tag", tag)?;
        // Tags are a JSON array of lower-cased strings: match the quoted element.
        let quoted = serde_json::to_string(&tag.trim().to_lowercase())?;
        let pattern = format!("%{}%", like_escape(&quoted));
        cond = cond.add(Expr::col(C::Tags).like(LikeExpr::new(pattern).escape('\\')));
    }
    if let Some(text) = f.search.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        check_text("search", text)?;
        let columns: &[C] = if private {
            &[C::Name, C::Email, C::Company, C::Phone]
        } else {
            &[C::Name, C::Company]
        };
        let mut any = Condition::any();
        for col in columns {
            any = any.add(contains(Expr::col(*col), text));
        }
        cond = cond.add(any);
    }
    if depth > 0
        && let Some(deleted) = f.deleted
    {
        cond = cond.add(if deleted {
            C::DeletedAt.is_not_null()
        } else {
            C::DeletedAt.is_null()
        });
    }
    combine(cond, &f.and, &f.or, f.not.as_deref(), depth, |f, depth| {
        condition(f, depth, private)
    })
}

/// External ids of the given customers (of the tenant), oldest first.
pub async fn external_ids_of(t: &Tenant, customer_ids: &[CustomerId]) -> Result<Vec<ExternalId>> {
    external_ids_in(t.db(), t, customer_ids).await
}

/// Social profiles of the given customers (of the tenant), oldest first.
pub async fn social_profiles_of(
    t: &Tenant,
    customer_ids: &[CustomerId],
) -> Result<Vec<SocialProfile>> {
    social_profiles_in(t.db(), t, customer_ids).await
}

/// `external_ids_of`, read on `conn` (a write reads them in its transaction).
pub(super) async fn external_ids_in(
    conn: &impl ConnectionTrait,
    t: &Tenant,
    customer_ids: &[CustomerId],
) -> Result<Vec<ExternalId>> {
    use customer_external_ids::Column as X;
    let rows = t
        .find::<customer_external_ids::Entity>()
        .filter(X::CustomerId.is_in(customer_ids.iter().cloned()))
        .order_by_asc(X::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| ExternalId {
            id: m.id,
            customer_id: m.customer_id,
            source: m.source,
            external_id: m.external_id,
        })
        .collect())
}

/// `social_profiles_of`, read on `conn` (a write reads them in its transaction).
pub(super) async fn social_profiles_in(
    conn: &impl ConnectionTrait,
    t: &Tenant,
    customer_ids: &[CustomerId],
) -> Result<Vec<SocialProfile>> {
    use social_profiles::Column as S;
    let rows = t
        .find::<social_profiles::Entity>()
        .filter(S::CustomerId.is_in(customer_ids.iter().cloned()))
        .order_by_asc(S::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|m| SocialProfile {
            id: m.id,
            customer_id: m.customer_id,
            network: m.network,
            handle: m.handle,
            network_user_id: m.network_user_id,
            url: m.url,
        })
        .collect())
}
