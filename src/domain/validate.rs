//! Parse, don't validate: each function turns raw input into the stored form or a
//! `FieldViolation` naming the field. Bounds match the column sizes of the migration.

use chrono::{DateTime, SubsecRound, Utc};

use super::{FieldViolation, ViolationCode};

pub type Parsed<T> = Result<T, FieldViolation>;

fn violation(field: &str, code: ViolationCode, message: impl Into<String>) -> FieldViolation {
    FieldViolation::new(&[field], code, message)
}

/// Trims, refuses control characters, and bounds the length in characters.
pub fn text(field: &str, raw: &str, max: usize) -> Parsed<String> {
    let value = raw.trim();
    if value.chars().count() > max {
        return Err(violation(
            field,
            ViolationCode::TooLong,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(violation(
            field,
            ViolationCode::Invalid,
            "must not contain control characters",
        ));
    }
    Ok(value.to_owned())
}

/// A non-empty bounded text.
pub fn required_text(field: &str, raw: &str, max: usize) -> Parsed<String> {
    let value = text(field, raw, max)?;
    if value.is_empty() {
        return Err(violation(
            field,
            ViolationCode::Required,
            "must not be empty",
        ));
    }
    Ok(value)
}

/// An optional text where blank means absent.
pub fn optional_text(field: &str, raw: Option<&str>, max: usize) -> Parsed<Option<String>> {
    match raw {
        None => Ok(None),
        Some(raw) => Ok(Some(text(field, raw, max)?).filter(|v| !v.is_empty())),
    }
}

/// Multi-line text (bodies): newlines allowed, bounded in bytes.
pub fn body(field: &str, raw: Option<&str>, max_bytes: usize) -> Parsed<Option<String>> {
    let Some(raw) = raw else { return Ok(None) };
    if raw.len() > max_bytes {
        return Err(violation(
            field,
            ViolationCode::TooLong,
            format!("must be at most {max_bytes} bytes"),
        ));
    }
    let value = raw.trim();
    Ok(Some(value.to_owned()).filter(|v| !v.is_empty()))
}

pub fn email(field: &str, raw: Option<&str>) -> Parsed<Option<String>> {
    let Some(value) = optional_text(field, raw, 320)? else {
        return Ok(None);
    };
    let parsed: email_address::EmailAddress = value.parse().map_err(|_| {
        violation(
            field,
            ViolationCode::InvalidEmail,
            "is not a valid email address",
        )
    })?;
    // The domain part is case-insensitive; the local part is kept as given.
    let (local, domain) = (parsed.local_part(), parsed.domain());
    if !domain.contains('.') {
        return Err(violation(
            field,
            ViolationCode::InvalidEmail,
            "is not a valid email address",
        ));
    }
    Ok(Some(format!("{local}@{}", domain.to_lowercase())))
}

/// E.164 when the number carries its country code (`+44 20 7946 0958` -> `+442079460958`);
/// otherwise a plausible national number is kept with its spacing tidied.
pub fn phone(field: &str, raw: Option<&str>) -> Parsed<Option<String>> {
    let Some(value) = optional_text(field, raw, 40)? else {
        return Ok(None);
    };
    let invalid = || {
        violation(
            field,
            ViolationCode::InvalidPhone,
            "is not a valid phone number",
        )
    };
    if value.starts_with('+') {
        let number = phonenumber::parse(None, &value).map_err(|_| invalid())?;
        if !phonenumber::is_valid(&number) {
            return Err(invalid());
        }
        return Ok(Some(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ));
    }
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.'));
    if !allowed || !(5..=17).contains(&digits) {
        return Err(invalid());
    }
    Ok(Some(value.split_whitespace().collect::<Vec<_>>().join(" ")))
}

pub const MAX_TAGS: usize = 20;
pub const MAX_TAG_LEN: usize = 50;

/// Trimmed, lower-cased, de-duplicated, bounded in count and length.
pub fn tags(field: &str, raw: &[String]) -> Parsed<Vec<String>> {
    if raw.len() > MAX_TAGS {
        return Err(violation(
            field,
            ViolationCode::TooMany,
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(raw.len());
    for (i, tag) in raw.iter().enumerate() {
        let tag = required_text(field, tag, MAX_TAG_LEN)
            .map_err(|v| v.with_index(i))?
            .to_lowercase();
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

pub const MAX_CUSTOM_FIELDS_BYTES: usize = 16 * 1024;

/// A JSON object of at most 16 KiB.
pub fn custom_fields(field: &str, raw: serde_json::Value) -> Parsed<serde_json::Value> {
    if !raw.is_object() {
        return Err(violation(
            field,
            ViolationCode::Invalid,
            "must be a JSON object",
        ));
    }
    let size = serde_json::to_vec(&raw)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_FIELDS_BYTES {
        return Err(violation(
            field,
            ViolationCode::TooLong,
            format!("must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes of JSON"),
        ));
    }
    if deeper_than(&raw, MAX_CUSTOM_FIELDS_DEPTH) {
        // The API refuses deeper input at its edge; files reach here directly.
        return Err(violation(
            field,
            ViolationCode::Invalid,
            format!("must be at most {MAX_CUSTOM_FIELDS_DEPTH} levels deep"),
        ));
    }
    if holds_nul(&raw) {
        // PostgreSQL refuses NUL in text and JSON; GraphQL input is scanned for it at the
        // edge, but files (`crm import`) reach here directly.
        return Err(violation(
            field,
            ViolationCode::Invalid,
            "must not contain NUL characters",
        ));
    }
    Ok(raw)
}

/// How deep custom fields may nest (as deep as any input the API takes).
pub const MAX_CUSTOM_FIELDS_DEPTH: usize = 32;

/// Whether a JSON value nests deeper than `max` (walked with a stack).
fn deeper_than(value: &serde_json::Value, max: usize) -> bool {
    use serde_json::Value as V;
    let mut stack = vec![(value, 1)];
    while let Some((value, depth)) = stack.pop() {
        if depth > max {
            return true;
        }
        match value {
            V::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            V::Object(fields) => stack.extend(fields.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    false
}

/// Whether any key or string of a JSON value holds NUL (walked with a stack: the value's
/// depth is the client's).
fn holds_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            V::String(s) if s.contains('\0') => return true,
            V::Array(items) => stack.extend(items),
            V::Object(fields) => {
                if fields.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(fields.values());
            }
            _ => {}
        }
    }
    false
}

/// A timestamp at the stored precision, within years a CRM can mean.
pub fn time(field: &str, raw: DateTime<Utc>) -> Parsed<DateTime<Utc>> {
    let year = chrono::Datelike::year(&raw);
    if !(1900..=2200).contains(&year) {
        return Err(violation(
            field,
            ViolationCode::Invalid,
            "must be between the years 1900 and 2200",
        ));
    }
    Ok(raw.trunc_subsecs(6))
}

impl FieldViolation {
    /// Points the violation at one element of a list field.
    pub fn with_index(mut self, index: usize) -> Self {
        self.field.push(index.to_string());
        self
    }
}

/// Collects the violations of several fields so the client learns of all of them at once.
#[derive(Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn take<T: Default>(&mut self, parsed: Parsed<T>) -> T {
        match parsed {
            Ok(v) => v,
            Err(v) => {
                self.0.push(v);
                T::default()
            }
        }
    }

    pub fn push(&mut self, v: FieldViolation) {
        self.0.push(v);
    }

    pub fn finish(self) -> super::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(super::Error::Invalid(self.0))
        }
    }
}
