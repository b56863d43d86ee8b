//! Running live operations for many clients at once. Subscribers asking the same thing (the
//! same subscription document, operation and variables, for the same tenant with the same
//! scopes) get identical results, so they share one execution: each event is resolved and
//! serialised once per group and handed to every member as the same bytes. With thousands of
//! dashboards watching `customerChanged`, an event costs one execution, not thousands.
//!
//! A subscription's result depends only on the tenant and the scopes (never on who the
//! subject is: `viewer` is not reachable from `Subscription`), which is what makes sharing
//! safe. Anything that is not a subscription (a query or mutation sent over a socket) runs
//! alone, through the same machinery.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use async_graphql::{Request, Response, Variables};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::{AbortHandle, JoinSet, unconstrained};

use super::errors::is_request_error;
use super::{Executor, Loaders, RequestAuth};
use crate::auth::{Principal, Scope};
use crate::domain::Store;
use crate::metrics::LiveGauges;

/// One result of a live operation, rendered once for all its recipients.
#[derive(Clone, Debug)]
pub enum LiveResult {
    /// A GraphQL response, as JSON.
    Next(Arc<str>),
    /// The operation was refused before it ran (it does not parse or validate): the JSON
    /// list of its errors. Nothing follows.
    Refused(Arc<str>),
    /// The operation ended.
    Complete,
}

/// Where a live operation's results go: one operation of one client.
pub trait Recipient: Send + Sync + 'static {
    /// Hands over one result. `false` means this recipient takes no more (it is gone, or
    /// too slow and closing itself) and is dropped from its group.
    fn deliver(&self, result: &LiveResult) -> bool;
}

/// What a client asked to run.
pub struct LiveRequest {
    pub query: String,
    pub operation_name: Option<String>,
    /// A JSON object, or `Null` for none.
    pub variables: Value,
}

/// Everything that can change a result; equal keys share one execution.
#[derive(Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    tenant: Option<(String, BTreeSet<Scope>)>,
    query: String,
    operation_name: Option<String>,
    variables: String,
}

type Members = HashMap<u64, Arc<dyn Recipient>>;

/// Members one delivery task writes to: a large group's event goes out to its sockets from
/// every worker thread at once, not from the one its execution runs on.
///
/// Deliveries run outside tokio's cooperative budget (`unconstrained`): recipients
/// write to their sockets without a waker, and once a task's budget of 128 I/O operations
/// is spent, every further write would report "not now" and fall back to a wake of the
/// connection's own task (three in four of them at this chunk size).
const DELIVERY_CHUNK: usize = 512;

struct Group {
    /// `None` for an operation that runs alone.
    key: Option<GroupKey>,
    /// The tenant's count of executions, released when the group goes.
    _slot: Option<OrgSlot>,
    members: Mutex<Members>,
    task: OnceLock<AbortHandle>,
    /// Set by whichever ends the execution first: its last member leaving, or its stream.
    ended: AtomicBool,
}

impl Group {
    fn members(&self) -> MutexGuard<'_, Members> {
        // A poisoned lock only means a recipient panicked mid-delivery; the map is intact.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands `result` to every member, in chunks on all worker threads when there are many,
    /// and returns when all have it (so the next result never overtakes it).
    async fn deliver(&self, result: &LiveResult, gauges: &LiveGauges) {
        let mut chunks: Vec<Vec<(u64, Arc<dyn Recipient>)>> = Vec::new();
        for (id, recipient) in self.members().iter() {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < DELIVERY_CHUNK => chunk.push((*id, recipient.clone())),
                _ => chunks.push(vec![(*id, recipient.clone())]),
            }
        }
        let gone = if chunks.len() <= 1 {
            let chunk = chunks.pop().unwrap_or_default();
            unconstrained(async { deliver_to(&chunk, result) }).await
        } else {
            let mut tasks = JoinSet::new();
            for chunk in chunks {
                let result = result.clone();
                tasks.spawn(unconstrained(async move { deliver_to(&chunk, &result) }));
            }
            let mut gone = Vec::new();
            while let Some(done) = tasks.join_next().await {
                gone.extend(done.unwrap_or_default());
            }
            gone
        };
        if gone.is_empty() {
            return;
        }
        let mut members = self.members();
        for id in gone {
            // A member that left meanwhile was counted out by its leaving.
            if members.remove(&id).is_some() {
                gauges.operations.dec();
            }
        }
    }

    /// Marks the execution ended; `true` for the first caller only.
    fn end(&self, gauges: &LiveGauges) -> bool {
        let first = !self.ended.swap(true, Ordering::AcqRel);
        if first {
            gauges.executions.dec();
        }
        first
    }

    fn abort(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }
}

/// Distinct executions one organization may run at once on an instance. Each runs its
/// selection at every event, so a tenant's live operations must not multiply one write
/// without bound; identical subscriptions share one execution and count once.
pub const MAX_EXECUTIONS_PER_ORG: usize = 256;

type OrgCounts = Arc<Mutex<HashMap<String, usize>>>;

/// One execution's place in its organization's count.
struct OrgSlot {
    counts: OrgCounts,
    org: String,
}

impl OrgSlot {
    /// A slot, unless the organization has used them all.
    fn take(counts: &OrgCounts, org: &str) -> Option<Self> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let used = map.entry(org.to_owned()).or_default();
        if *used >= MAX_EXECUTIONS_PER_ORG {
            return None;
        }
        *used += 1;
        Some(Self {
            counts: counts.clone(),
            org: org.to_owned(),
        })
    }
}

impl Drop for OrgSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(used) = map.get_mut(&self.org) {
            *used = used.saturating_sub(1);
            if *used == 0 {
                map.remove(&self.org);
            }
        }
    }
}

struct Inner {
    executor: Executor,
    org_counts: OrgCounts,
    store: Store,
    batch_window: Duration,
    gauges: LiveGauges,
    groups: Mutex<HashMap<GroupKey, Arc<Group>>>,
    next_member: AtomicU64,
}

impl Inner {
    fn groups(&self) -> MutexGuard<'_, HashMap<GroupKey, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The process's live operations.
#[derive(Clone)]
pub struct LiveOperations {
    inner: Arc<Inner>,
}

/// A recipient's place in a group; dropping it leaves (and the last one out stops the
/// execution).
pub struct Membership {
    inner: Arc<Inner>,
    group: Arc<Group>,
    member: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        // Registry before group, as everywhere, so a leave and a join never deadlock.
        let mut groups = self.inner.groups();
        let mut members = self.group.members();
        if members.remove(&self.member).is_none() {
            return; // Dropped already: too slow, or the execution ended.
        }
        self.inner.gauges.operations.dec();
        if !members.is_empty() {
            return;
        }
        drop(members);
        if let Some(key) = &self.group.key
            && groups.get(key).is_some_and(|g| Arc::ptr_eq(g, &self.group))
        {
            groups.remove(key);
        }
        drop(groups);
        if self.group.end(&self.inner.gauges) {
            self.group.abort();
        }
    }
}

impl LiveOperations {
    pub fn new(
        executor: Executor,
        store: Store,
        batch_window: Duration,
        gauges: LiveGauges,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                executor,
                org_counts: OrgCounts::default(),
                store,
                batch_window,
                gauges,
                groups: Mutex::new(HashMap::new()),
                next_member: AtomicU64::new(0),
            }),
        }
    }

    /// Starts `request` for `recipient`, joining the execution of an identical subscription
    /// when one is running.
    pub fn start(
        &self,
        request: LiveRequest,
        caller: Option<&Principal>,
        recipient: Box<dyn Recipient>,
    ) -> Membership {
        let member = self.inner.next_member.fetch_add(1, Ordering::Relaxed);
        let recipient: Arc<dyn Recipient> = Arc::from(recipient);
        let shared = is_subscription(&request);
        let LiveRequest {
            query,
            operation_name,
            variables,
        } = request;
        let key = GroupKey {
            tenant: caller.map(|p| (p.org.clone(), p.scopes.clone())),
            variables: variables.to_string(),
            query,
            operation_name,
        };
        let mut groups = self.inner.groups();
        if shared && let Some(group) = groups.get(&key) {
            self.inner.gauges.operations.inc();
            group.members().insert(member, recipient);
            return Membership {
                inner: self.inner.clone(),
                group: group.clone(),
                member,
            };
        }
        let slot = match caller {
            Some(who) => match OrgSlot::take(&self.inner.org_counts, &who.org) {
                Some(slot) => Some(slot),
                None => {
                    drop(groups);
                    return self.refuse(recipient, member);
                }
            },
            None => None,
        };
        self.inner.gauges.operations.inc();
        let execution = self.request(&key, variables, caller);
        let group = Arc::new(Group {
            key: shared.then(|| key.clone()),
            _slot: slot,
            members: Mutex::new(HashMap::from([(member, recipient)])),
            task: OnceLock::new(),
            ended: AtomicBool::new(false),
        });
        self.inner.gauges.executions.inc();
        if shared {
            groups.insert(key, group.clone());
        }
        drop(groups);
        let task = tokio::spawn(run(self.inner.clone(), group.clone(), execution));
        let _ = group.task.set(task.abort_handle());
        Membership {
            inner: self.inner.clone(),
            group,
            member,
        }
    }

    /// Answers an operation over the organization's limit with an error, and nothing else.
    fn refuse(&self, recipient: Arc<dyn Recipient>, member: u64) -> Membership {
        let errors = super::error_list(
            &format!(
                "the organization runs {MAX_EXECUTIONS_PER_ORG} distinct live operations already; end some, or share one document"
            ),
            super::codes::VALIDATION_FAILED,
        );
        recipient.deliver(&LiveResult::Refused(errors.to_string().into()));
        let ended = Arc::new(Group {
            key: None,
            _slot: None,
            members: Mutex::new(HashMap::new()),
            task: OnceLock::new(),
            ended: AtomicBool::new(true),
        });
        Membership {
            inner: self.inner.clone(),
            group: ended,
            member,
        }
    }

    fn request(&self, key: &GroupKey, variables: Value, caller: Option<&Principal>) -> Request {
        let variables = match variables {
            v @ Value::Object(_) => Variables::from_json(v),
            _ => Variables::default(),
        };
        let mut request = Request::new(key.query.clone()).variables(variables);
        if let Some(name) = &key.operation_name {
            request = request.operation_name(name.clone());
        }
        if let Some(who) = caller {
            let tenant = self.inner.store.tenant(who);
            request = request
                .data(Loaders::uncached(&tenant, self.inner.batch_window))
                .data(tenant);
        }
        request.data(RequestAuth(caller.cloned()))
    }
}

/// Delivers to each recipient; the ids of those that take no more.
fn deliver_to(recipients: &[(u64, Arc<dyn Recipient>)], result: &LiveResult) -> Vec<u64> {
    recipients
        .iter()
        .filter(|(_, recipient)| !recipient.deliver(result))
        .map(|(id, _)| *id)
        .collect()
}

/// Whether the operation the request selects is a subscription. One that does not parse
/// runs alone, which reports why.
fn is_subscription(request: &LiveRequest) -> bool {
    super::operation_type(&request.query, request.operation_name.as_deref())
        == Some(OperationType::Subscription)
}

fn render(response: &Response, first: bool) -> LiveResult {
    if first && is_request_error(response) {
        let errors = serde_json::to_string(&response.errors).unwrap_or_else(|_| "[]".into());
        return LiveResult::Refused(errors.into());
    }
    // Every result carries `data` (null for one that failed), as graphql-ws expects.
    let json = String::from_utf8(super::response_json(response, true)).unwrap_or_default();
    LiveResult::Next(json.into())
}

/// Executes the group's operation once and delivers each result to every member.
async fn run(inner: Arc<Inner>, group: Arc<Group>, request: Request) {
    let mut stream = inner.executor.execute_stream(request);
    let mut ending = Ending {
        inner: inner.clone(),
        group: group.clone(),
        last: LiveResult::Complete,
    };
    let mut first = true;
    while let Some(response) = stream.next().await {
        let result = render(&response, first);
        first = false;
        if matches!(result, LiveResult::Refused(_)) {
            ending.last = result;
            break;
        }
        group.deliver(&result, &inner.gauges).await;
    }
}

/// Ends a group however its execution stops: its stream ending, a panic in a resolver, or
/// an abort when the last member left; so no member waits on an execution that is gone and
/// nobody joins one.
struct Ending {
    inner: Arc<Inner>,
    group: Arc<Group>,
    last: LiveResult,
}

impl Drop for Ending {
    fn drop(&mut self) {
        let (inner, group) = (&self.inner, &self.group);
        // Leave the registry first, so whoever joins from now on starts afresh, then tell
        // every member (including one that joined a moment ago) that this is the end.
        let members = {
            let mut groups = inner.groups();
            if let Some(key) = &group.key
                && groups.get(key).is_some_and(|g| Arc::ptr_eq(g, group))
            {
                groups.remove(key);
            }
            std::mem::take(&mut *group.members())
        };
        if !group.end(&inner.gauges) {
            return; // Ended by its last member leaving.
        }
        inner.gauges.operations.dec_by(members.len() as i64);
        for recipient in members.values() {
            recipient.deliver(&self.last);
        }
    }
}
