//! `userErrors`: what was wrong with the caller's input, returned in the mutation payload
//! instead of as a top-level error.

use async_graphql::{Enum, SimpleObject};

use crate::domain::{self, FieldViolation, ViolationCode};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::ViolationCode")]
pub enum UserErrorCode {
    Required,
    Invalid,
    TooLong,
    TooMany,
    InvalidEmail,
    InvalidPhone,
    NotFound,
    Duplicate,
    VersionConflict,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct UserError {
    /// The path to the input field at fault, starting below `input`.
    pub field: Option<Vec<String>>,
    pub message: String,
    pub code: UserErrorCode,
}

impl From<FieldViolation> for UserError {
    fn from(v: FieldViolation) -> Self {
        Self {
            field: Some(v.field),
            message: v.message,
            code: v.code.into(),
        }
    }
}

/// Splits a domain result into what a payload carries: the value, or the user errors.
/// Errors that are not the input's fault stay errors (top-level, with their code).
pub fn split<T>(result: domain::Result<T>) -> Result<(Option<T>, Vec<UserError>), domain::Error> {
    match result {
        Ok(value) => Ok((Some(value), Vec::new())),
        Err(domain::Error::Invalid(violations)) => {
            Ok((None, violations.into_iter().map(UserError::from).collect()))
        }
        Err(other) => Err(other),
    }
}

// Keeps the remote enum's variants in step with ours at compile time.
const _: fn(ViolationCode) -> UserErrorCode = UserErrorCode::from;
