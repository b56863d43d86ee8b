//! Event snapshots are stored JSON that outlives the build that wrote it: a `changes` cursor
//! or a webhook retry may read an event written months ago. Each snapshot therefore carries
//! the version of its format, and each snapshot type says which version it writes and how
//! to read older ones, so a type can change without stranding the log behind it.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{DecodeError, Event};

/// The key of a snapshot that holds its format version. Snapshots written before formats
/// were versioned have none and are version 1.
pub const VERSION_KEY: &str = "snapshotVersion";

/// A type stored as the snapshot of events.
pub trait Snapshot: Serialize + DeserializeOwned {
    /// The format this build writes. Bump it when a field is renamed, retyped or removed,
    /// and teach `upcast` to read the previous one.
    const VERSION: u64;

    /// Reads a snapshot written in an older format `version`. None exists yet.
    fn upcast(version: u64, snapshot: Value) -> Result<Self, String> {
        let _ = snapshot;
        Err(format!("no reader for snapshot version {version}"))
    }
}

/// The stored form of `snapshot`: its fields and its format version.
pub fn encode<S: Snapshot>(snapshot: &S) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(snapshot)?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert(VERSION_KEY.to_owned(), S::VERSION.into());
    }
    Ok(value)
}

impl Event {
    /// The entity as it was after the change. One that cannot be read is logged with the
    /// event's `seq` and returned as an error, never passed over.
    pub fn snapshot<S: Snapshot>(&self) -> Result<S, DecodeError> {
        decode(&self.snapshot).map_err(|why| {
            let err = DecodeError {
                seq: self.seq,
                why: format!("snapshot: {why}"),
            };
            tracing::error!(seq = self.seq, error = %err, "an event's snapshot cannot be read");
            err
        })
    }
}

fn decode<S: Snapshot>(stored: &Value) -> Result<S, String> {
    let version = match stored.get(VERSION_KEY) {
        None => 1,
        Some(v) => v
            .as_u64()
            .ok_or_else(|| format!("the version {v} is not a number"))?,
    };
    if version == S::VERSION {
        S::deserialize(stored).map_err(|e| e.to_string())
    } else if version < S::VERSION {
        S::upcast(version, stored.clone())
    } else {
        Err(format!(
            "version {version} is newer than this build reads ({})",
            S::VERSION
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V2 {
        full_name: String,
    }

    impl Snapshot for V2 {
        const VERSION: u64 = 2;

        fn upcast(version: u64, snapshot: Value) -> Result<Self, String> {
            match (version, snapshot.get("name").and_then(Value::as_str)) {
                (1, Some(name)) => Ok(V2 {
                    full_name: name.to_owned(),
                }),
                _ => Err(format!("no reader for snapshot version {version}")),
            }
        }
    }

    #[test]
    fn snapshots_round_trip_and_older_formats_are_upcast() {
        let current = encode(&V2 {
            full_name: "Ada".into(),
        })
        .map_err(|e| e.to_string());
        assert_eq!(
            current.clone().and_then(|v| decode::<V2>(&v)),
            Ok(V2 {
                full_name: "Ada".into()
            })
        );
        let unversioned = serde_json::json!({ "name": "Ada" });
        assert_eq!(
            decode::<V2>(&unversioned),
            Ok(V2 {
                full_name: "Ada".into()
            })
        );
        let future = serde_json::json!({ "full_name": "Ada", VERSION_KEY: 3 });
        assert!(decode::<V2>(&future).is_err_and(|e| e.contains("newer")));
    }
}
