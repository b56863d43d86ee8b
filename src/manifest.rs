//! Files of trusted documents for `crm documents add`: a GraphQL file (`.graphql`, `.gql`:
//! the whole file is one document, its id the SHA-256 of its text), an Apollo persisted
//! query manifest (`{"format": "apollo-persisted-query-manifest", "operations": [{"id",
//! "body"}]}`), or a Relay persisted-queries map (`{"<id>": "<text>"}`).

use std::path::Path;

use serde_json::Value;

use crate::domain::documents::{id_of, is_valid_id};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error(
        "{path}: neither an Apollo manifest (`format`, `operations`) nor a Relay map of ids to documents"
    )]
    UnknownFormat { path: String },
    #[error("{path}: document `{id}` is not valid GraphQL (or nests too deep)")]
    Invalid { path: String, id: String },
    #[error("{path}: `{id}` is not an id (at most 128 letters, digits, `_`, `-`, `.`, `:`)")]
    BadId { path: String, id: String },
    #[error("{path}: empty")]
    Empty { path: String },
}

/// The (id, document) pairs of a file, each checked to parse.
pub fn read(path: &Path) -> Result<Vec<(String, String)>, ManifestError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: shown.clone(),
        source,
    })?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let documents = if is_json {
        from_json(&shown, &text)?
    } else {
        vec![(id_of(&text), text)]
    };
    if documents.is_empty() || documents.iter().all(|(_, body)| body.trim().is_empty()) {
        return Err(ManifestError::Empty { path: shown });
    }
    for (id, body) in &documents {
        if !is_valid_id(id) {
            return Err(ManifestError::BadId {
                path: shown,
                id: id.clone(),
            });
        }
        if crate::graphql::parse_bounded(body).is_none() {
            return Err(ManifestError::Invalid {
                path: shown,
                id: id.clone(),
            });
        }
    }
    Ok(documents)
}

/// A SHA-256 id in lower case (as lookups use it); any other id as it is.
fn canonical_id(id: &str) -> String {
    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        id.to_ascii_lowercase()
    } else {
        id.to_owned()
    }
}

fn from_json(path: &str, text: &str) -> Result<Vec<(String, String)>, ManifestError> {
    let value: Value = serde_json::from_str(text).map_err(|source| ManifestError::Json {
        path: path.to_owned(),
        source,
    })?;
    let unknown = || ManifestError::UnknownFormat {
        path: path.to_owned(),
    };
    let Value::Object(map) = value else {
        return Err(unknown());
    };
    if let Some(Value::Array(operations)) = map.get("operations") {
        return operations
            .iter()
            .map(|op| {
                let body = op.get("body").and_then(Value::as_str).ok_or_else(unknown)?;
                let id = op
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| id_of(body), canonical_id);
                Ok((id, body.to_owned()))
            })
            .collect();
    }
    map.into_iter()
        .map(|(id, body)| match body {
            Value::String(body) => Ok((canonical_id(&id), body)),
            _ => Err(unknown()),
        })
        .collect()
}
