//! Realistic fake data for demos and benchmarks, written in bulk (multi-row inserts in one
//! transaction) with the same event rows a normal write would leave.

use chrono::Duration;
use entity::{activities, customers, users};
use fake::Fake;
use fake::faker::company::en::{CatchPhrase, CompanyName};
use fake::faker::internet::en::SafeEmail;
use fake::faker::lorem::en::Sentence;
use fake::faker::name::en::Name;
use rand::Rng;
use rand::seq::IndexedRandom;
use sea_orm::{ConnectionTrait, EntityTrait, Set};

use super::activities::{Activity, ActivityKind};
use super::aggregate::{all_fields, event};
use super::customers::{Customer, LifecycleStage};
use super::ids::{ActivityId, CustomerId, IdKind, new_id};
use super::{Result, Store, now};
use crate::auth::Principal;
use crate::events::{self, Op};

/// What a seed run wrote.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seeded {
    pub users: usize,
    pub customers: usize,
    pub activities: usize,
}

const CHUNK: usize = 200;
const OWNERS: usize = 5;

pub async fn seed(
    store: &Store,
    org: &str,
    customer_count: usize,
    activities_per_customer: usize,
) -> Result<Seeded> {
    // Whoever seeds holds the database: the operator acts in the organization it names.
    let operator = Principal::operator("seed", org);
    let t = store.tenant(&operator);
    let mut rng = rand::rng();
    let at = now();
    let txn = store.write().await?;

    let owners: Vec<users::ActiveModel> = (0..OWNERS)
        .map(|i| {
            let name: String = Name().fake();
            t.stamp(users::ActiveModel {
                id: Set(new_id(IdKind::User)),
                subject: Set(format!("seed-user-{}-{i}", ulid::Ulid::new())),
                email: Set(Some(format!(
                    "{}@example.com",
                    name.to_lowercase().replace(' ', ".")
                ))),
                name: Set(Some(name)),
                created_at: Set(at),
                ..Default::default()
            })
        })
        .collect();
    let owner_ids: Vec<String> = owners.iter().filter_map(|u| u.id.clone().take()).collect();
    users::Entity::insert_many(owners).exec(&*txn).await?;

    let stages = [
        LifecycleStage::Lead,
        LifecycleStage::Prospect,
        LifecycleStage::Customer,
        LifecycleStage::Churned,
    ];
    let tag_pool = ["vip", "newsletter", "enterprise", "smb", "partner", "trial"];
    let mut written = Seeded {
        users: OWNERS,
        ..Seeded::default()
    };

    let mut pending_customers = Vec::with_capacity(CHUNK);
    let mut pending_activities = Vec::with_capacity(CHUNK);
    let mut pending_events = Vec::with_capacity(CHUNK);
    for i in 0..customer_count {
        let created = at - Duration::minutes(rng.random_range(0..60 * 24 * 365));
        let name: String = Name().fake();
        let tag_count = rng.random_range(0..3);
        let mut tags: Vec<String> = tag_pool
            .choose_multiple(&mut rng, tag_count)
            .map(|t| (*t).to_owned())
            .collect();
        tags.sort();
        let customer_id = CustomerId::mint();
        let mut last_activity = None;
        let mut activity_events = Vec::with_capacity(activities_per_customer);
        for _ in 0..activities_per_customer {
            let occurred = created + Duration::minutes(rng.random_range(0..60 * 24 * 30));
            last_activity = last_activity.max(Some(occurred));
            let kind = *<ActivityKind as strum::VariantArray>::VARIANTS
                .choose(&mut rng)
                .unwrap_or(&ActivityKind::Note);
            let activity = Activity {
                id: ActivityId::mint(),
                org_id: org.to_owned(),
                customer_id: customer_id.clone(),
                kind,
                subject: CatchPhrase().fake(),
                body: Some(Sentence(5..15).fake()),
                occurred_at: occurred,
                due_at: (kind == ActivityKind::Task).then(|| occurred + Duration::days(7)),
                completed_at: None,
                author_id: owner_ids.choose(&mut rng).cloned(),
                source: None,
                external_id: None,
                version: 1,
                created_at: at,
                updated_at: at,
                deleted_at: None,
            };
            let fields = all_fields(&activity)?;
            activity_events.push(events::row(event(t.who(), &activity, Op::Created, fields)?));
            pending_activities.push(t.stamp(activity.into_row()));
        }
        let customer = Customer {
            id: customer_id,
            org_id: org.to_owned(),
            email: Some(SafeEmail().fake()),
            phone: Some(format!("+1202555{:04}", i % 10_000)),
            company: Some(CompanyName().fake()),
            lifecycle_stage: *stages.choose(&mut rng).unwrap_or(&LifecycleStage::Lead),
            owner_id: owner_ids.choose(&mut rng).cloned(),
            tags,
            custom_fields: serde_json::json!({ "source": "seed" }),
            version: 1,
            last_activity_at: last_activity,
            created_at: created,
            updated_at: created,
            deleted_at: None,
            name,
        };
        // The customer's creation comes first in the log, then its activities': a consumer
        // applying events in order never meets an activity of a customer it does not know.
        let fields = all_fields(&customer)?;
        pending_events.push(events::row(event(t.who(), &customer, Op::Created, fields)?));
        pending_events.append(&mut activity_events);
        pending_customers.push(t.stamp(customer.into_row()?));
        written.customers += 1;
        written.activities += activities_per_customer;

        if pending_customers.len() >= CHUNK || i + 1 == customer_count {
            customers::Entity::insert_many(std::mem::take(&mut pending_customers))
                .exec(&*txn)
                .await?;
            for chunk in std::mem::take(&mut pending_activities).chunks(CHUNK * 2) {
                activities::Entity::insert_many(chunk.to_vec())
                    .exec(&*txn)
                    .await?;
            }
            for chunk in std::mem::take(&mut pending_events).chunks(CHUNK * 2) {
                entity::events::Entity::insert_many(chunk.to_vec())
                    .exec(&*txn)
                    .await?;
            }
        }
    }
    store.commit(txn).await?;
    // Fresh statistics: PostgreSQL plans a keyset page of freshly bulk-loaded rows with a
    // sequential scan until it has them (measured: a page of 50 customers at 400 req/s
    // before, 2,500 after); SQLite's planner benefits too.
    store.db().execute_unprepared("ANALYZE").await?;
    Ok(written)
}
