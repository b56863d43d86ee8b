//! Opaque, prefixed, time-ordered ids (`cus_01JD…`): the prefix names the type, so `node(id:)`
//! can route without a lookup, and the ULID body sorts by creation.

use std::sync::Mutex;

use ulid::Generator;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdKind {
    Customer,
    Activity,
    User,
    ExternalId,
    SocialProfile,
    ApiClient,
}

impl IdKind {
    const ALL: [IdKind; 6] = [
        IdKind::Customer,
        IdKind::Activity,
        IdKind::User,
        IdKind::ExternalId,
        IdKind::SocialProfile,
        IdKind::ApiClient,
    ];

    fn prefix(self) -> &'static str {
        match self {
            IdKind::Customer => "cus",
            IdKind::Activity => "act",
            IdKind::User => "usr",
            IdKind::ExternalId => "xid",
            IdKind::SocialProfile => "spr",
            IdKind::ApiClient => "cli",
        }
    }

    /// The kind an id claims to be, if it is well-formed. Ill-formed ids are simply
    /// unknown: they answer like any id that does not exist.
    pub fn of(id: &str) -> Option<IdKind> {
        let (prefix, body) = id.split_once('_')?;
        let kind = Self::ALL.into_iter().find(|k| k.prefix() == prefix)?;
        ulid::Ulid::from_string(body).ok()?;
        Some(kind)
    }
}

/// A monotonic generator, so ids minted in the same millisecond still sort in order.
static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);

pub fn new_id(kind: IdKind) -> String {
    let ulid = {
        let mut guard = GENERATOR
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let generator = guard.get_or_insert_with(Generator::new);
        // Overflow needs 2^80 ids in one millisecond; fall back to a fresh random one.
        generator.generate().unwrap_or_else(|_| ulid::Ulid::new())
    };
    format!("{}_{}", kind.prefix(), ulid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_their_kind_and_sort_by_creation() {
        let a = new_id(IdKind::Customer);
        let b = new_id(IdKind::Customer);
        assert!(a < b);
        assert_eq!(IdKind::of(&a), Some(IdKind::Customer));
        assert_eq!(IdKind::of("cus_nope"), None);
        assert_eq!(IdKind::of("zzz_01JD0000000000000000000000"), None);
    }
}
