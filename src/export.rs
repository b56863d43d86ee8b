//! `crm export`: a tenant's customers and activities, streamed to standard output or a
//! file, as JSON Lines (one object a line, with an `entity` key) or CSV (one entity kind,
//! nested values as JSON text).

use std::io::Write;

use serde_json::Value;

use crate::domain::{Tenant, export};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entities {
    Customers,
    Activities,
    All,
}

const CUSTOMER_COLUMNS: [&str; 14] = [
    "id",
    "name",
    "email",
    "phone",
    "company",
    "lifecycleStage",
    "ownerId",
    "tags",
    "customFields",
    "version",
    "lastActivityAt",
    "createdAt",
    "updatedAt",
    "deletedAt",
];

const ACTIVITY_COLUMNS: [&str; 15] = [
    "id",
    "customerId",
    "kind",
    "subject",
    "body",
    "occurredAt",
    "dueAt",
    "completedAt",
    "authorId",
    "source",
    "externalId",
    "version",
    "createdAt",
    "updatedAt",
    "deletedAt",
];

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("CSV holds one kind of row: pass --entities customers or --entities activities")]
    CsvNeedsOneEntity,
    #[error("writing the export failed: {0}")]
    Write(#[from] std::io::Error),
    #[error("writing CSV failed: {0}")]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Read(#[from] crate::domain::Error),
}

/// A CSV cell: text as it is, nothing for null, other values as JSON. Text a spreadsheet
/// would take for a formula (`=`, `+`, `-`, `@`, tab, carriage return first) gets a leading
/// `'`, as OWASP advises against CSV injection.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) if s.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
            format!("'{s}")
        }
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The next page of a kind of row after `after`.
async fn page(t: &Tenant, kind: Entities, after: &str) -> Result<Vec<Value>, ExportError> {
    Ok(match kind {
        Entities::Activities => export::activities_after(t, after).await?,
        _ => export::customers_after(t, after).await?,
    })
}

/// The id a page ends at, to read the next one after it.
fn last_id(page: &[Value]) -> Option<String> {
    page.last()
        .and_then(|row| row["id"].as_str())
        .map(str::to_owned)
}

/// Writes the export; how many rows it wrote.
pub async fn run(
    t: &Tenant,
    format: Format,
    entities: Entities,
    out: impl Write,
) -> Result<u64, ExportError> {
    let kinds: &[Entities] = match entities {
        Entities::All if format == Format::Csv => return Err(ExportError::CsvNeedsOneEntity),
        Entities::All => &[Entities::Customers, Entities::Activities],
        Entities::Customers => &[Entities::Customers],
        Entities::Activities => &[Entities::Activities],
    };
    match format {
        Format::Jsonl => jsonl(t, kinds, out).await,
        Format::Csv => csv(t, kinds[0], out).await,
    }
}

async fn jsonl(t: &Tenant, kinds: &[Entities], out: impl Write) -> Result<u64, ExportError> {
    let mut out = std::io::BufWriter::new(out);
    let mut written = 0u64;
    for kind in kinds {
        let name = if *kind == Entities::Activities {
            "activity"
        } else {
            "customer"
        };
        let mut after = String::new();
        loop {
            let rows = page(t, *kind, &after).await?;
            let Some(last) = last_id(&rows) else { break };
            after = last;
            for mut row in rows {
                if let Value::Object(map) = &mut row {
                    map.insert("entity".into(), Value::from(name));
                }
                serde_json::to_writer(&mut out, &row).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                written += 1;
            }
        }
    }
    out.flush()?;
    Ok(written)
}

async fn csv(t: &Tenant, kind: Entities, out: impl Write) -> Result<u64, ExportError> {
    let columns: &[&str] = if kind == Entities::Activities {
        &ACTIVITY_COLUMNS
    } else {
        &CUSTOMER_COLUMNS
    };
    let mut out = csv::Writer::from_writer(out);
    out.write_record(columns)?;
    let mut written = 0u64;
    let mut after = String::new();
    loop {
        let rows = page(t, kind, &after).await?;
        let Some(last) = last_id(&rows) else { break };
        after = last;
        for row in rows {
            out.write_record(columns.iter().map(|c| cell(row.get(*c))))?;
            written += 1;
        }
    }
    out.flush()?;
    Ok(written)
}
