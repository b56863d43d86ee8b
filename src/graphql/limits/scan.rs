//! Scans that recurse over nothing: how deep a document nests before it is parsed, and what
//! an input value holds (depth, NUL characters) before anything coerces it.

use async_graphql_value::{ConstValue, Value};

use super::{MAX_DOCUMENT_NESTING, MAX_VALUE_NESTING, Rejection};

/// The bracket nesting of a GraphQL document, counted without parsing: strings, block
/// strings and comments are skipped. Stops at the first level past the limit.
pub fn check_nesting(document: &str) -> Result<(), Rejection> {
    let bytes = document.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // `\"""` is an escaped triple quote inside a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") {
                        4
                    } else {
                        1
                    };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_DOCUMENT_NESTING {
                    return Err(Rejection::DocumentTooDeep);
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Walks a value with an explicit stack: depth and NUL characters (PostgreSQL refuses them
/// in text and JSON, so they must never reach it).
pub fn check_value<'a>(value: &'a ConstValue, what: &dyn Fn() -> String) -> Result<(), Rejection> {
    use ConstValue as V;
    let mut stack: Vec<(&'a V, usize)> = vec![(value, 0)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            V::String(s) if s.contains('\0') => return Err(Rejection::NulCharacter(what())),
            V::List(_) | V::Object(_) if depth >= MAX_VALUE_NESTING => {
                return Err(Rejection::ValueTooDeep(what()));
            }
            V::List(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            V::Object(fields) => {
                for (key, v) in fields {
                    if key.contains('\0') {
                        return Err(Rejection::NulCharacter(what()));
                    }
                    stack.push((v, depth + 1));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The same checks on a literal in the document (whose nesting is bounded already).
pub fn check_literal(
    value: &Value,
    depth: usize,
    what: &dyn Fn() -> String,
) -> Result<(), Rejection> {
    match value {
        Value::String(s) if s.contains('\0') => Err(Rejection::NulCharacter(what())),
        Value::List(_) | Value::Object(_) if depth >= MAX_VALUE_NESTING => {
            Err(Rejection::ValueTooDeep(what()))
        }
        Value::List(items) => items
            .iter()
            .try_for_each(|v| check_literal(v, depth + 1, what)),
        Value::Object(fields) => fields.iter().try_for_each(|(key, v)| {
            if key.contains('\0') {
                return Err(Rejection::NulCharacter(what()));
            }
            check_literal(v, depth + 1, what)
        }),
        _ => Ok(()),
    }
}
