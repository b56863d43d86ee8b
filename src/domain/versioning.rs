//! Optimistic concurrency shared by every versioned record: `expectedVersion` checks and the
//! conflict a client sees when someone else wrote first.

use super::{Error, Result, ViolationCode};

pub fn conflict(current: i32) -> Error {
    Error::invalid(
        &["expectedVersion"],
        ViolationCode::VersionConflict,
        format!("the record was changed by someone else; its version is now {current}"),
    )
}

/// Refuses a write when the client said which version it read and that is no longer current.
pub fn check(expected: Option<i32>, current: i32) -> Result<()> {
    match expected {
        Some(v) if v != current => Err(conflict(current)),
        _ => Ok(()),
    }
}
