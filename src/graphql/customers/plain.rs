//! Customers answered plainly (see `graphql::render`): the fields of `Customer` that are its
//! row's own data, and its `activities`, fetched for the whole page in one statement as soon
//! as the page is read (no loader window) and rendered from the rows.

use async_graphql::{Context, ContextSelectionSet, Name};

use super::types::LifecycleStage;
use crate::domain::Tenant;
use crate::domain::activities::{self, Activity};
use crate::domain::customers::{self, Customer, CustomerQuery};
use crate::domain::ids::CustomerId;
use crate::domain::page::Slice;
use crate::graphql::activities::plain::NestedPlan;
use crate::graphql::permissions::PlainlyReadable;
use crate::graphql::render::{self, ConnectionPlan, ConnectionTypes, Json, optional_time, time};

const TYPES: ConnectionTypes = ConnectionTypes {
    connection: "CustomerConnection",
    edge: "CustomerEdge",
};

/// A plain customer connection selection.
pub struct Plan(ConnectionPlan<CustomerPlan>);

/// The fields of a `Customer` selection, by response key.
pub struct CustomerPlan(Vec<(Name, Part)>);

enum Part {
    Typename,
    Id,
    Name,
    Email,
    Phone,
    Company,
    LifecycleStage,
    Tags,
    CustomFields,
    Version,
    LastActivityAt,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
    Activities(Box<NestedPlan>),
}

impl Plan {
    /// The plan of the connection field `ctx` resolves, or `None` when it is not plain.
    pub fn of(ctx: &Context<'_>) -> Option<Self> {
        let plan = ConnectionPlan::of_field(ctx, TYPES, &CustomerPlan::of)?;
        // One nested page shape per level, as the loader would batch it: several differing
        // `activities` selections resolve the usual way.
        let uniform = {
            let mut queries = plan.nodes().flat_map(CustomerPlan::activities);
            match queries.next() {
                Some(first) => queries.all(|other| other.query == first.query),
                None => true,
            }
        };
        uniform.then_some(Self(plan))
    }

    /// Its nested activities selection (one page shape, `of`).
    fn nested(&self) -> Option<&NestedPlan> {
        self.0.nodes().flat_map(CustomerPlan::activities).next()
    }

    /// The connection's answer, its customers and their nested activity pages read in one
    /// statement; `None` when its selection has no nested activities, or their arguments are
    /// refused (the field then reports them where they belong).
    pub async fn render_whole(
        &self,
        t: &Tenant,
        query: &CustomerQuery,
    ) -> crate::domain::Result<Option<Json>> {
        let Some(nested) = self.nested() else {
            return Ok(None);
        };
        let Ok(nesting) = activities::Nesting::new(t, &nested.query) else {
            return Ok(None);
        };
        let page = customers::list_with_activities(t, query, &nesting).await?;
        Ok(Some(
            self.0.render(&page, &|plan, out, row| plan.write(out, row)),
        ))
    }

    /// The connection's answer for `page`; the page back when its nested activities could
    /// not be read (the fields then resolve the usual way, reporting the error where it
    /// belongs).
    pub async fn render(&self, t: &Tenant, page: Slice<Customer>) -> Result<Json, Slice<Customer>> {
        let nested = self.nested();
        let ids: Vec<CustomerId> = page.rows.iter().map(|(_, c)| c.id.clone()).collect();
        let Some(pages) = nested_pages(t, &ids, nested).await else {
            return Err(page);
        };
        let page = Slice {
            rows: page
                .rows
                .into_iter()
                .zip(pages)
                .map(|((cursor, c), activities)| (cursor, (c, activities)))
                .collect(),
            has_next_page: page.has_next_page,
            has_previous_page: page.has_previous_page,
        };
        Ok(self.0.render(&page, &|plan, out, row| plan.write(out, row)))
    }
}

/// The answer of the field `ctx` resolves to one customer, when its selection is plain; the
/// customer back when it is not.
pub async fn render_one(
    ctx: &Context<'_>,
    t: &Tenant,
    customer: Customer,
) -> Result<Json, Customer> {
    let Some(plan) = CustomerPlan::of(&ctx.with_selection_set(&ctx.item.node.selection_set)) else {
        return Err(customer);
    };
    let ids = std::slice::from_ref(&customer.id);
    let Some(mut pages) = nested_pages(t, ids, plan.activities().next()).await else {
        return Err(customer);
    };
    let activities = pages.pop().unwrap_or_else(Slice::empty);
    let mut out = Json::new();
    plan.write(&mut out, &(customer, activities));
    Ok(out)
}

/// The nested activity pages of customers `ids` (one each, in their order), empty when
/// their selection has none; `None` when they could not be read.
async fn nested_pages(
    t: &Tenant,
    ids: &[CustomerId],
    nested: Option<&NestedPlan>,
) -> Option<Vec<Slice<Activity>>> {
    match nested {
        Some(nested) => activities::list_for_customers(t, ids, &nested.query)
            .await
            .ok(),
        None => Some(ids.iter().map(|_| Slice::empty()).collect()),
    }
}

impl CustomerPlan {
    fn of(ctx: &ContextSelectionSet<'_>) -> Option<Self> {
        let mut parts = Vec::new();
        let readable = PlainlyReadable::of(ctx);
        for field in render::fields(ctx, &ctx.item.node, "Customer")? {
            let name = field.node.name.node.as_str();
            let part = match name {
                "__typename" => Part::Typename,
                _ if !readable.field("Customer", name) => return None,
                "id" => Part::Id,
                "name" => Part::Name,
                "email" => Part::Email,
                "phone" => Part::Phone,
                "company" => Part::Company,
                "lifecycleStage" => Part::LifecycleStage,
                "tags" => Part::Tags,
                "customFields" => Part::CustomFields,
                "version" => Part::Version,
                "lastActivityAt" => Part::LastActivityAt,
                "createdAt" => Part::CreatedAt,
                "updatedAt" => Part::UpdatedAt,
                "deletedAt" => Part::DeletedAt,
                // One nested page per customer, as `render` fetches it.
                "activities" if parts.iter().any(|(_, p)| matches!(p, Part::Activities(_))) => {
                    return None;
                }
                "activities" => Part::Activities(Box::new(NestedPlan::of(&ctx.with_field(field))?)),
                _ => return None,
            };
            parts.push((field.node.response_key().node.clone(), part));
        }
        Some(Self(parts))
    }

    fn activities(&self) -> impl Iterator<Item = &NestedPlan> {
        self.0.iter().filter_map(|(_, part)| match part {
            Part::Activities(nested) => Some(&**nested),
            _ => None,
        })
    }

    fn write(&self, out: &mut Json, (c, activities): &(Customer, Slice<Activity>)) {
        out.object(&self.0, |out, part| match part {
            Part::Typename => out.str("Customer"),
            Part::Id => out.str(c.id.as_str()),
            Part::Name => out.str(&c.name),
            Part::Email => out.optional_str(c.email.as_deref()),
            Part::Phone => out.optional_str(c.phone.as_deref()),
            Part::Company => out.optional_str(c.company.as_deref()),
            Part::LifecycleStage => out.value(&async_graphql::resolver_utils::enum_value(
                LifecycleStage::from(c.lifecycle_stage),
            )),
            Part::Tags => out.list(&c.tags, |out, tag| out.str(tag)),
            Part::CustomFields => {
                out.value(&async_graphql::to_value(&c.custom_fields).unwrap_or_default())
            }
            Part::Version => out.int(i64::from(c.version)),
            Part::LastActivityAt => optional_time(out, c.last_activity_at),
            Part::CreatedAt => time(out, c.created_at),
            Part::UpdatedAt => time(out, c.updated_at),
            Part::DeletedAt => optional_time(out, c.deleted_at),
            Part::Activities(nested) => {
                nested
                    .connection
                    .write(out, activities, &|plan, out, a| plan.write(out, a))
            }
        });
    }
}
