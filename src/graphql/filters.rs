//! Per-field operator inputs shared by every filter, converted to the domain's operators.

use async_graphql::{Enum, ID, InputObject};

use crate::domain::filter::{EqOps, TextOps, TimeOps};
use crate::graphql::scalars::DateTime;

/// Operators on a text field. Matching with `contains` and `startsWith` ignores case.
#[derive(InputObject, Clone, Default)]
pub struct StringFilter {
    pub eq: Option<String>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<String>>,
    pub contains: Option<String>,
    pub starts_with: Option<String>,
    pub is_null: Option<bool>,
}

impl From<StringFilter> for TextOps {
    fn from(f: StringFilter) -> Self {
        Self {
            eq: f.eq,
            in_: f.in_,
            contains: f.contains,
            starts_with: f.starts_with,
            is_null: f.is_null,
        }
    }
}

/// Operators on a timestamp field.
#[derive(InputObject, Clone, Default)]
pub struct DateTimeFilter {
    pub eq: Option<DateTime>,
    pub gt: Option<DateTime>,
    pub gte: Option<DateTime>,
    pub lt: Option<DateTime>,
    pub lte: Option<DateTime>,
    pub is_null: Option<bool>,
}

impl From<DateTimeFilter> for TimeOps {
    fn from(f: DateTimeFilter) -> Self {
        Self {
            eq: f.eq.map(Into::into),
            gt: f.gt.map(Into::into),
            gte: f.gte.map(Into::into),
            lt: f.lt.map(Into::into),
            lte: f.lte.map(Into::into),
            is_null: f.is_null,
        }
    }
}

/// Operators on an id field.
#[derive(InputObject, Clone, Default)]
pub struct IdFilter {
    pub eq: Option<ID>,
    #[graphql(name = "in")]
    pub in_: Option<Vec<ID>>,
    pub is_null: Option<bool>,
}

impl From<IdFilter> for EqOps {
    fn from(f: IdFilter) -> Self {
        Self {
            eq: f.eq.map(|id| id.0),
            in_: f.in_.map(|ids| ids.into_iter().map(|id| id.0).collect()),
            is_null: f.is_null,
        }
    }
}

/// Equality operators on an enumeration, generic over its GraphQL enum.
pub fn enum_ops<E: Copy>(
    eq: Option<E>,
    in_: Option<Vec<E>>,
    name: impl Fn(E) -> &'static str,
) -> EqOps {
    EqOps {
        eq: eq.map(&name).map(str::to_owned),
        in_: in_.map(|vs| vs.into_iter().map(|v| name(v).to_owned()).collect()),
        is_null: None,
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OrderDirection {
    #[default]
    Asc,
    Desc,
}

impl OrderDirection {
    pub fn descending(self) -> bool {
        self == OrderDirection::Desc
    }
}

/// Converts an optional input into the optional domain operator.
pub fn ops<I: Into<O>, O>(input: Option<I>) -> Option<O> {
    input.map(Into::into)
}
