//! Activity input rules.

use super::{ActivityPatch, NewActivity};
use crate::domain::validate::{self as v, Violations};
use crate::domain::{Result, now};

pub const SUBJECT_MAX: usize = 500;
pub const BODY_MAX_BYTES: usize = 64 * 1024;

pub fn new_activity(mut input: NewActivity) -> Result<NewActivity> {
    let mut errs = Violations::default();
    input.subject = errs.take(v::required_text("subject", &input.subject, SUBJECT_MAX));
    input.body = errs.take(v::body("body", input.body.as_deref(), BODY_MAX_BYTES));
    input.occurred_at =
        Some(errs.take(v::time("occurredAt", input.occurred_at.unwrap_or_else(now))));
    input.due_at = input.due_at.map(|t| errs.take(v::time("dueAt", t)));
    input.completed_at = input
        .completed_at
        .map(|t| errs.take(v::time("completedAt", t)));
    input.source = errs
        .take(v::optional_text("source", input.source.as_deref(), 64))
        .map(|s| s.to_lowercase());
    input.external_id = errs.take(v::optional_text(
        "externalId",
        input.external_id.as_deref(),
        255,
    ));
    errs.finish()?;
    Ok(input)
}

pub fn patch(mut input: ActivityPatch) -> Result<ActivityPatch> {
    let mut errs = Violations::default();
    if let Some(subject) = &input.subject {
        input.subject = Some(errs.take(v::required_text("subject", subject, SUBJECT_MAX)));
    }
    if let Some(body) = &input.body {
        input.body = Some(errs.take(v::body("body", body.as_deref(), BODY_MAX_BYTES)));
    }
    if let Some(t) = input.occurred_at {
        input.occurred_at = Some(errs.take(v::time("occurredAt", t)));
    }
    if let Some(Some(t)) = input.due_at {
        input.due_at = Some(Some(errs.take(v::time("dueAt", t))));
    }
    if let Some(Some(t)) = input.completed_at {
        input.completed_at = Some(Some(errs.take(v::time("completedAt", t))));
    }
    errs.finish()?;
    Ok(input)
}
