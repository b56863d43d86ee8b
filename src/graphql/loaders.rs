//! Dataloaders, one set per request (so caches never outlive the caller's permissions),
//! each confined to the caller's org. Every relation resolves through one of these, so a
//! level of a nested query costs one statement however many parents it has.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};

use crate::domain::activities::{self, Activity, ActivityFilter, ActivityQuery};
use crate::domain::customers::{self, Customer, ExternalId, SocialProfile};
use crate::domain::ids::{ActivityId, CustomerId};
use crate::domain::page::Slice;
use crate::domain::users::{self, User};
use crate::domain::{self, Tenant};

type LoadResult<K, V> = Result<HashMap<K, V>, Arc<domain::Error>>;

/// A loader that caches what it loaded for the rest of the request.
type Cached<L> = DataLoader<L, HashMapCache>;

/// A loader that waits `window` for more keys before it runs. Sibling fields register their
/// keys over several polls of the request (list items are resolved 32 at a time), so a window
/// shorter than those rounds would split one level into several statements.
fn cached<L: Send + Sync + 'static>(loader: L, window: Duration) -> Cached<L> {
    DataLoader::with_cache(loader, tokio::spawn, HashMapCache::default()).delay(window)
}

/// A loader that batches but keeps nothing: for keys that a request asks for once (a page of
/// a parent's children), where a cache would only copy every key and value once more.
fn batched<L: Send + Sync + 'static>(loader: L, window: Duration) -> DataLoader<L> {
    DataLoader::new(loader, tokio::spawn).delay(window)
}

/// A request's loaders, each made when first used: most requests use one or none, and
/// making all seven was 1.5% of a point read.
pub struct Loaders {
    tenant: Tenant,
    window: Duration,
    /// Whether the caching loaders remember what they loaded.
    remember: bool,
    customers: OnceLock<Cached<CustomerById>>,
    activities: OnceLock<Cached<ActivityById>>,
    users: OnceLock<Cached<UserById>>,
    external_ids: OnceLock<Cached<ExternalIdsByCustomer>>,
    social_profiles: OnceLock<Cached<SocialProfilesByCustomer>>,
    activity_pages: OnceLock<DataLoader<ActivityPages>>,
    activity_counts: OnceLock<DataLoader<ActivityCounts>>,
}

impl Loaders {
    pub fn new(tenant: &Tenant, window: Duration) -> Self {
        Self {
            tenant: tenant.clone(),
            window,
            remember: true,
            customers: OnceLock::new(),
            activities: OnceLock::new(),
            users: OnceLock::new(),
            external_ids: OnceLock::new(),
            social_profiles: OnceLock::new(),
            activity_pages: OnceLock::new(),
            activity_counts: OnceLock::new(),
        }
    }

    /// Loaders that batch but never remember: a live subscription lasts for hours, and a
    /// cache would answer its later events with what was true at its first.
    pub fn uncached(tenant: &Tenant, window: Duration) -> Self {
        Self {
            remember: false,
            ..Self::new(tenant, window)
        }
    }

    fn scope(&self) -> Scoped {
        Scoped(self.tenant.clone())
    }

    fn cached<L: Send + Sync + 'static>(&self, loader: L) -> Cached<L> {
        let loader = cached(loader, self.window);
        loader.enable_all_cache(self.remember);
        loader
    }

    pub fn customers(&self) -> &Cached<CustomerById> {
        self.customers
            .get_or_init(|| self.cached(CustomerById(self.scope())))
    }

    pub fn activities(&self) -> &Cached<ActivityById> {
        self.activities
            .get_or_init(|| self.cached(ActivityById(self.scope())))
    }

    pub fn users(&self) -> &Cached<UserById> {
        self.users
            .get_or_init(|| self.cached(UserById(self.scope())))
    }

    pub fn external_ids(&self) -> &Cached<ExternalIdsByCustomer> {
        self.external_ids
            .get_or_init(|| self.cached(ExternalIdsByCustomer(self.scope())))
    }

    pub fn social_profiles(&self) -> &Cached<SocialProfilesByCustomer> {
        self.social_profiles
            .get_or_init(|| self.cached(SocialProfilesByCustomer(self.scope())))
    }

    pub fn activity_pages(&self) -> &DataLoader<ActivityPages> {
        self.activity_pages
            .get_or_init(|| batched(ActivityPages(self.scope()), self.window))
    }

    pub fn activity_counts(&self) -> &DataLoader<ActivityCounts> {
        self.activity_counts
            .get_or_init(|| batched(ActivityCounts(self.scope()), self.window))
    }
}

/// The tenant every loader reads within.
pub struct Scoped(Tenant);

pub struct CustomerById(Scoped);
pub struct ActivityById(Scoped);
pub struct UserById(Scoped);
pub struct ExternalIdsByCustomer(Scoped);
pub struct SocialProfilesByCustomer(Scoped);
/// Key: (customer id, the page arguments of `Customer.activities`).
pub struct ActivityPages(Scoped);
/// Key: (customer id, the filter of `Customer.activities`).
pub struct ActivityCounts(Scoped);

impl Loader<CustomerId> for CustomerById {
    type Value = Customer;
    type Error = Arc<domain::Error>;

    async fn load(&self, ids: &[CustomerId]) -> LoadResult<CustomerId, Customer> {
        let rows = customers::by_ids(&self.0.0, ids).await?;
        Ok(rows.into_iter().map(|c| (c.id.clone(), c)).collect())
    }
}

impl Loader<ActivityId> for ActivityById {
    type Value = Activity;
    type Error = Arc<domain::Error>;

    async fn load(&self, ids: &[ActivityId]) -> LoadResult<ActivityId, Activity> {
        let rows = activities::by_ids(&self.0.0, ids).await?;
        Ok(rows.into_iter().map(|a| (a.id.clone(), a)).collect())
    }
}

impl Loader<String> for UserById {
    type Value = User;
    type Error = Arc<domain::Error>;

    async fn load(&self, ids: &[String]) -> LoadResult<String, User> {
        let rows = users::by_ids(&self.0.0, ids).await?;
        Ok(rows.into_iter().map(|u| (u.id.clone(), u)).collect())
    }
}

fn group<T>(
    ids: &[CustomerId],
    rows: Vec<T>,
    key: impl Fn(&T) -> &str,
) -> HashMap<CustomerId, Vec<T>> {
    let mut out: HashMap<CustomerId, Vec<T>> =
        ids.iter().map(|id| (id.clone(), Vec::new())).collect();
    for row in rows {
        if let Some(list) = out.get_mut(key(&row)) {
            list.push(row);
        }
    }
    out
}

impl Loader<CustomerId> for ExternalIdsByCustomer {
    type Value = Vec<ExternalId>;
    type Error = Arc<domain::Error>;

    async fn load(&self, ids: &[CustomerId]) -> LoadResult<CustomerId, Vec<ExternalId>> {
        let rows = customers::external_ids_of(&self.0.0, ids).await?;
        Ok(group(ids, rows, |x| &x.customer_id))
    }
}

impl Loader<CustomerId> for SocialProfilesByCustomer {
    type Value = Vec<SocialProfile>;
    type Error = Arc<domain::Error>;

    async fn load(&self, ids: &[CustomerId]) -> LoadResult<CustomerId, Vec<SocialProfile>> {
        let rows = customers::social_profiles_of(&self.0.0, ids).await?;
        Ok(group(ids, rows, |p| &p.customer_id))
    }
}

/// A parent's page arguments as part of a loader key, hashed once: every parent of a level
/// asks with the same arguments, and a dataloader hashes each key several times (a filter
/// has a score of fields).
#[derive(Clone, Debug)]
pub struct Args<Q> {
    hash: u64,
    query: Arc<Q>,
}

impl<Q: std::hash::Hash> Args<Q> {
    pub fn new(query: Q) -> Self {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        Self {
            hash: BuildHasherDefault::<DefaultHasher>::default().hash_one(&query),
            query: Arc::new(query),
        }
    }
}

impl<Q> std::ops::Deref for Args<Q> {
    type Target = Q;

    fn deref(&self) -> &Q {
        &self.query
    }
}

impl<Q> std::hash::Hash for Args<Q> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl<Q: PartialEq> PartialEq for Args<Q> {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.query, &other.query)
            || (self.hash == other.hash && self.query == other.query)
    }
}

impl<Q: Eq> Eq for Args<Q> {}

/// Groups keys by their arguments, so parents asking for the same page shape share one
/// statement (the usual case: one field in a query, many parents).
fn by_args<A: Clone + Eq + std::hash::Hash>(
    keys: &[(CustomerId, A)],
) -> HashMap<A, Vec<CustomerId>> {
    let mut groups: HashMap<A, Vec<CustomerId>> = HashMap::new();
    for (id, args) in keys {
        groups.entry(args.clone()).or_default().push(id.clone());
    }
    groups
}

impl Loader<(CustomerId, Args<ActivityQuery>)> for ActivityPages {
    type Value = Slice<Activity>;
    type Error = Arc<domain::Error>;

    async fn load(
        &self,
        keys: &[(CustomerId, Args<ActivityQuery>)],
    ) -> LoadResult<(CustomerId, Args<ActivityQuery>), Slice<Activity>> {
        let mut out = HashMap::with_capacity(keys.len());
        for (query, ids) in by_args(keys) {
            let pages = activities::list_for_customers(&self.0.0, &ids, &query).await?;
            out.extend(
                ids.into_iter()
                    .zip(pages)
                    .map(|(id, page)| ((id, query.clone()), page)),
            );
        }
        Ok(out)
    }
}

impl Loader<(CustomerId, Args<ActivityFilter>)> for ActivityCounts {
    type Value = u64;
    type Error = Arc<domain::Error>;

    async fn load(
        &self,
        keys: &[(CustomerId, Args<ActivityFilter>)],
    ) -> LoadResult<(CustomerId, Args<ActivityFilter>), u64> {
        let mut out = HashMap::with_capacity(keys.len());
        for (filter, ids) in by_args(keys) {
            let counts = activities::count_for_customers(&self.0.0, &ids, &filter).await?;
            out.extend(ids.into_iter().map(|id| {
                let n = counts.get(id.as_str()).copied().unwrap_or(0);
                ((id, filter.clone()), n)
            }));
        }
        Ok(out)
    }
}
