//! The SQL of a read by id, built once per entity, backend and projection. SeaORM builds a
//! statement anew for every request (every column of the entity, then only the projection's,
//! then the text), which was an eighth of the instructions of a `customer(id)` read; the text
//! is the same for every request with that selection, only its two values differ.

use std::any::TypeId;
use std::sync::{Arc, LazyLock};

use sea_orm::{DbBackend, Statement, Values};

/// How many statements are kept: one per selection clients make of an entity by id.
const KEPT: usize = 512;

type Key = (TypeId, u32, u8);

static BUILT: LazyLock<quick_cache::sync::Cache<Key, Arc<str>>> =
    LazyLock::new(|| quick_cache::sync::Cache::new(KEPT));

/// The statement `build` makes, whose values must be `values` (the tenant's and the id):
/// the text is built once for `entity` and `projection` and then bound to each request's
/// values. A text is kept only when the built statement's values are exactly `values`, in
/// that order, so binding them to it is what `build` would have made.
pub fn statement(
    backend: DbBackend,
    entity: TypeId,
    projection: u32,
    values: Values,
    build: impl FnOnce() -> Statement,
) -> Statement {
    let Some(backend_key) = key_of(backend) else {
        return build();
    };
    let key = (entity, projection, backend_key);
    if let Some(sql) = BUILT.get(&key) {
        return Statement::from_sql_and_values(backend, sql.as_ref(), values);
    }
    let built = build();
    if built.values.as_ref() == Some(&values) {
        BUILT.insert(key, Arc::from(built.sql.as_str()));
    }
    built
}

fn key_of(backend: DbBackend) -> Option<u8> {
    match backend {
        DbBackend::Postgres => Some(0),
        DbBackend::Sqlite => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Probe;

    fn built(sql: &str, values: Vec<sea_orm::Value>) -> Statement {
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    }

    #[test]
    fn a_text_is_reused_only_with_the_values_it_was_built_for() {
        let values = || Values(vec!["org_a".into(), "cus_1".into()]);
        // Built with other values than those given: not kept.
        let first = statement(
            DbBackend::Sqlite,
            TypeId::of::<Probe>(),
            1,
            values(),
            || {
                built(
                    "SELECT 1 WHERE a = ? AND b = ?",
                    vec!["x".into(), "y".into()],
                )
            },
        );
        assert_eq!(first.values, Some(Values(vec!["x".into(), "y".into()])));
        let again = statement(
            DbBackend::Sqlite,
            TypeId::of::<Probe>(),
            1,
            values(),
            || built("SELECT 2 WHERE a = ? AND b = ?", values().0),
        );
        assert_eq!(again.sql, "SELECT 2 WHERE a = ? AND b = ?");
        // Now kept: the next request binds its own values to the same text.
        let other = Values(vec!["org_b".into(), "cus_2".into()]);
        let reused = statement(
            DbBackend::Sqlite,
            TypeId::of::<Probe>(),
            1,
            other.clone(),
            || panic!("built again"),
        );
        assert_eq!(reused.sql, "SELECT 2 WHERE a = ? AND b = ?");
        assert_eq!(reused.values, Some(other));
        // Another projection or backend is another text.
        let pg = statement(
            DbBackend::Postgres,
            TypeId::of::<Probe>(),
            1,
            values(),
            || built("SELECT 3", values().0),
        );
        assert_eq!(pg.sql, "SELECT 3");
    }
}
