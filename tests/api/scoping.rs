//! Tenant scoping by construction: a query on a tenant table is built only by the scoping
//! module (`src/domain/tenant.rs`: `Tenant` for one tenant, `CrossTenant` for the few reads
//! that must cross tenants). This check reads the source, so the rule holds for code not
//! yet written: a new `customers::Entity::find()` anywhere else fails it.

use std::path::{Path, PathBuf};

/// Tables whose rows belong to one tenant (they carry `org_id`).
const TENANT_TABLES: [&str; 15] = [
    "customers",
    "activities",
    "users",
    "customer_external_ids",
    "social_profiles",
    "api_clients",
    "events",
    "usage_daily",
    "persisted_documents",
    "webhook_endpoints",
    "webhook_deliveries",
    "webhook_attempts",
    "idempotency_keys",
    "social_connections",
    "inbound_messages",
];

/// Where tenant-table queries may be built, and why.
const ALLOWED: [(&str, &str); 6] = [
    ("src/domain/tenant.rs", "the scoping module itself"),
    (
        "src/domain/documents.rs",
        "persisted documents: trusted ones belong to every tenant (an empty org), and their retention prunes every tenant's registered ones; a tenant's own go through Tenant",
    ),
    (
        "src/domain/webhooks/deliveries.rs",
        "webhook delivery: the dispatcher turns every tenant's events into deliveries, and workers claim and record deliveries of every tenant; endpoints and listings go through Tenant",
    ),
    (
        "src/domain/usage.rs",
        "usage metering: one flush adds the counts of every tenant's callers (reads go through Tenant)",
    ),
    (
        "src/domain/idempotency.rs",
        "idempotency keys: expiry prunes every tenant's expired keys; a tenant's own keys go through Tenant",
    ),
    (
        "src/events/",
        "the event log: its tailer and retention read every tenant's events, and `append` takes the org of the writing tenant",
    ),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines of Rust source under `src/` that build a query on a tenant table outside the
/// scoping module.
pub fn unscoped_queries(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut patterns: Vec<String> = vec!["org_id: Set(".into(), "OrgId.eq(".into()];
    for table in TENANT_TABLES {
        for builder in [
            "find()",
            "find_by_id(",
            "delete_many()",
            "delete_by_id(",
            "update_many()",
        ] {
            patterns.push(format!("{table}::Entity::{builder}"));
        }
    }
    let mut found = Vec::new();
    for file in files {
        let relative = file
            .strip_prefix(root)
            .unwrap_or(&file)
            .to_string_lossy()
            .replace('\\', "/");
        if ALLOWED
            .iter()
            .any(|(allowed, _)| relative.starts_with(allowed))
        {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            if patterns.iter().any(|p| line.contains(p.as_str())) {
                found.push(format!("{relative}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn tenant_tables_are_queried_only_through_the_scoping_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = unscoped_queries(root);
    assert!(
        found.is_empty(),
        "queries on tenant tables outside src/domain/tenant.rs (use `Tenant::find`/`update`/`delete`/`stamp`, or `CrossTenant` for a read that must cross tenants):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_check_catches_an_unscoped_query() {
    // A copy of the tree with one unscoped query added must fail the check.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src").join("graphql");
    std::fs::create_dir_all(&src).expect("mkdir");
    std::fs::write(
        src.join("sneaky.rs"),
        "async fn all(db: &DatabaseConnection) { customers::Entity::find().all(db).await; }\n",
    )
    .expect("write");
    let found = unscoped_queries(dir.path());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(unscoped_queries(root).is_empty());
}
