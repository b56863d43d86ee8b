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
    WebhookEndpoint,
    /// A webhook delivery: its id is the `webhook-id` receivers see.
    WebhookMessage,
    SocialConnection,
    InboundMessage,
}

impl IdKind {
    const ALL: [IdKind; 10] = [
        IdKind::Customer,
        IdKind::Activity,
        IdKind::User,
        IdKind::ExternalId,
        IdKind::SocialProfile,
        IdKind::ApiClient,
        IdKind::WebhookEndpoint,
        IdKind::WebhookMessage,
        IdKind::SocialConnection,
        IdKind::InboundMessage,
    ];

    fn prefix(self) -> &'static str {
        match self {
            IdKind::Customer => "cus",
            IdKind::Activity => "act",
            IdKind::User => "usr",
            IdKind::ExternalId => "xid",
            IdKind::SocialProfile => "spr",
            IdKind::ApiClient => "cli",
            IdKind::WebhookEndpoint => "whe",
            IdKind::WebhookMessage => "msg",
            IdKind::SocialConnection => "sco",
            IdKind::InboundMessage => "inm",
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

/// The id of one kind of record: a customer's id cannot be passed where an activity's is
/// expected, and one made from client input is well-formed (right prefix, a ULID body).
macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new id, sorting after every id minted before it.
            pub fn mint() -> Self {
                Self(new_id($kind))
            }

            /// The id `raw` names, if it is a well-formed id of this kind; anything else
            /// names nothing, and answers like an id that does not exist.
            pub fn parse(raw: &str) -> Option<Self> {
                (IdKind::of(raw) == Some($kind)).then(|| Self(raw.to_owned()))
            }

            /// The record a client names by `raw`: NOT_FOUND unless `raw` is well-formed,
            /// as for any id that names nothing.
            pub fn from_client(raw: &str) -> crate::domain::Result<Self> {
                Self::parse(raw).ok_or(crate::domain::Error::NotFound)
            }

            /// An id read back from the database, where only ids of this kind are stored.
            pub(crate) fn stored(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for sea_orm::Value {
            fn from(id: $name) -> Self {
                id.0.into()
            }
        }

        impl From<&$name> for sea_orm::Value {
            fn from(id: &$name) -> Self {
                id.0.as_str().into()
            }
        }
    };
}

typed_id!(
    /// A customer's id (`cus_…`).
    CustomerId,
    IdKind::Customer
);
typed_id!(
    /// An activity's id (`act_…`).
    ActivityId,
    IdKind::Activity
);

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
