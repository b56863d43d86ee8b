//! The domain's one error type. `Display` is what a client may read; causes stay in `source`
//! and are logged once by the GraphQL error mapping.
//!
//! Use `Invalid` for anything the caller can fix in their input (it becomes `userErrors`),
//! `NotFound` for a target that does not exist in the caller's tenant, `BadArgument` for a
//! malformed query argument (a bad cursor), and `Internal` for everything else.

use sea_orm::{DbErr, SqlErr};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViolationCode {
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

/// One thing wrong with one input field; `field` is the path into the input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: Vec<String>,
    pub message: String,
    pub code: ViolationCode,
}

impl FieldViolation {
    pub fn new(field: &[&str], code: ViolationCode, message: impl Into<String>) -> Self {
        Self {
            field: field.iter().map(|s| (*s).to_owned()).collect(),
            message: message.into(),
            code,
        }
    }

    /// The same violation, nested under `prefix` (e.g. `externalIds`, `2`).
    pub fn under(mut self, prefix: &[String]) -> Self {
        let mut field = prefix.to_vec();
        field.append(&mut self.field);
        self.field = field;
        self
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found")]
    NotFound,
    #[error("invalid input")]
    Invalid(Vec<FieldViolation>),
    #[error("{0}")]
    BadArgument(String),
    /// The database cancelled a statement that ran past its timeout, or (SQLite) another
    /// process held the write lock past the busy timeout.
    #[error("the database took too long to answer; try again, or narrow the request")]
    Timeout,
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(field: &[&str], code: ViolationCode, message: impl Into<String>) -> Self {
        Self::Invalid(vec![FieldViolation::new(field, code, message)])
    }

    pub fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(err))
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_statement_timeout(&err) {
            tracing::warn!(error = %err, "a statement ran past its timeout");
            return Error::Timeout;
        }
        Error::Internal(Box::new(err))
    }
}

/// Whether the database gave up waiting: PostgreSQL cancelled the statement (`57014
/// query_canceled`: `statement_timeout`), or SQLite's write lock stayed with another process
/// past the busy timeout (`SQLITE_BUSY` and its extended codes).
fn is_statement_timeout(err: &DbErr) -> bool {
    let (DbErr::Query(sea_orm::RuntimeErr::SqlxError(sqlx))
    | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(sqlx))
    | DbErr::Conn(sea_orm::RuntimeErr::SqlxError(sqlx))) = err
    else {
        return false;
    };
    sqlx.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| matches!(code.as_ref(), "57014" | "5" | "261" | "517" | "773"))
}

/// Whether a database error is a unique-constraint violation, classified by SeaORM so that
/// SQLite and PostgreSQL answer alike.
pub fn is_unique_violation(err: &DbErr) -> bool {
    matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Error::Internal(Box::new(err))
    }
}
