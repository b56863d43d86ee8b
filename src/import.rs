//! `crm import`: customers from a CSV file (with a header row) or JSON Lines, streamed a
//! chunk at a time into the bulk upsert of the domain (`customers::upsert_in`), which checks
//! every row by the rules of the API and appends the events of what it writes.
//!
//! This module is the CLI's side: it reads and splits the file (bounding every record, so a
//! malformed or endless line is a rejected row, not a crash), maps columns to fields, holds
//! the transactions (a commit per chunk, one for the whole file, or a rollback for a dry
//! run), reports each rejected row by its line and sums up. A thread reads, maps and checks
//! the file (`CheckedUpsert::new`: the input rules, phone numbers and all) while the runtime
//! writes the chunk before, so the checks and the database use a core each.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::domain::customers::{
    self, CheckedUpsert, LifecycleStage, Upsert, UpsertItem, UpsertStatus,
};
use crate::domain::{FieldViolation, Tenant, ViolationCode, WriteTxn};

/// Rows sent to the database at once: one `upsert_in` call, and in the default mode one
/// transaction.
pub const CHUNK_ROWS: usize = 1_000;
/// The longest record (CSV) or line (JSON Lines) taken, in bytes; a longer one is rejected.
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;
/// Chunks read ahead of the one being written.
const READ_AHEAD: usize = 4;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

impl Format {
    /// The format a file's extension names: `.csv`, `.jsonl` or `.ndjson`.
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Self::Csv),
            "jsonl" | "ndjson" => Some(Self::Jsonl),
            _ => None,
        }
    }
}

/// How `crm import` runs.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `None`: from the file's extension.
    pub format: Option<Format>,
    /// `COLUMN=FIELD` (read the column as the field) or `COLUMN=` (ignore the column).
    pub maps: Vec<String>,
    /// The system the external ids belong to.
    pub source: String,
    /// One transaction for the file: any rejected row and nothing is written.
    pub all_or_nothing: bool,
    /// Everything checked, the database's checks included, then rolled back.
    pub dry_run: bool,
    /// Where to write the rejected rows as JSON Lines.
    pub rejects: Option<PathBuf>,
    /// No progress bar and no line per rejected row (the summary is still printed).
    pub quiet: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot tell the format of {0} from its name: pass --format csv or --format jsonl \
         (or name it .csv, .jsonl or .ndjson)"
    )]
    UnknownFormat(String),
    #[error("--map {0}: expected COLUMN=FIELD, or COLUMN= to ignore the column")]
    BadMap(String),
    #[error("--map {map}: `{field}` is no field; the fields are: {known}", known = field_list())]
    UnknownField { map: String, field: String },
    #[error("--map names the column `{0}`, which {1} does not have")]
    UnusedMap(String, String),
    #[error("{}", unknown_columns(.0))]
    UnknownColumns(Vec<String>),
    #[error("--rejects {0} names the file being imported: it would be emptied before it is read")]
    RejectsIsInput(String),
    #[error("--map names the column `{0}` twice")]
    MapTwice(String),
    #[error("the columns `{0}` and `{1}` both give the field `{2}`: ignore one with --map '{1}='")]
    SameField(String, String, &'static str),
    #[error(
        "{0} has no `name` column, and every customer needs a name: rename the column that \
         holds it with --map 'COLUMN=name'"
    )]
    NoName(String),
    #[error("the header of {path} cannot be read: {reason}")]
    BadHeader { path: String, reason: String },
    #[error("reading {path} failed: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--source: {0}")]
    Source(String),
    #[error("cannot write the rejected rows to {path}: {source}")]
    Rejects {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the database failed")]
    Database(#[source] crate::domain::Error),
}

impl From<crate::domain::Error> for ImportError {
    fn from(err: crate::domain::Error) -> Self {
        match err {
            crate::domain::Error::Invalid(violations) => Self::Source(
                violations
                    .iter()
                    .map(|v| v.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            other => Self::Database(other),
        }
    }
}

impl From<sea_orm::DbErr> for ImportError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Database(err.into())
    }
}

/// Unknown columns an error names at most.
const MAX_NAMED_UNKNOWN: usize = 20;

fn unknown_columns(columns: &[String]) -> String {
    let shown = &columns[..columns.len().min(MAX_NAMED_UNKNOWN)];
    let mut named: Vec<String> = shown.iter().map(|c| format!("`{c}`")).collect();
    if columns.len() > shown.len() {
        named.push(format!("and {} more", columns.len() - shown.len()));
    }
    let hints: Vec<String> = shown
        .iter()
        .take(3)
        .map(|c| format!("--map '{c}=FIELD' or --map '{c}='"))
        .collect();
    format!(
        "unknown column{} {}; the fields are: {}. Read a column as a field or ignore it: {}",
        if columns.len() == 1 { "" } else { "s" },
        named.join(", "),
        field_list(),
        hints.join(", ")
    )
}

/// The fields a column or key may give: those of `CustomerUpsertInput`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ExternalId,
    Name,
    Email,
    Phone,
    Company,
    LifecycleStage,
    OwnerId,
    Tags,
    CustomFields,
}

const FIELDS: [Field; 9] = [
    Field::ExternalId,
    Field::Name,
    Field::Email,
    Field::Phone,
    Field::Company,
    Field::LifecycleStage,
    Field::OwnerId,
    Field::Tags,
    Field::CustomFields,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::ExternalId => "externalId",
            Self::Name => "name",
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Company => "company",
            Self::LifecycleStage => "lifecycleStage",
            Self::OwnerId => "ownerId",
            Self::Tags => "tags",
            Self::CustomFields => "customFields",
        }
    }

    /// The field a column names: its name in any case, with or without `_`, `-` or spaces
    /// (`lifecycle_stage`, `Owner ID`).
    fn named(column: &str) -> Option<Self> {
        let wanted = loose(column);
        FIELDS.into_iter().find(|f| loose(f.name()) == wanted)
    }
}

fn loose(name: &str) -> String {
    name.trim()
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn field_list() -> String {
    FIELDS.map(Field::name).join(", ")
}

/// The `--map` options: a column (exactly as the file names it) to a field, or to nothing.
#[derive(Clone, Debug, Default)]
struct Maps(Vec<(String, Option<Field>)>);

impl Maps {
    fn parse(raw: &[String]) -> Result<Self, ImportError> {
        let mut maps = Vec::with_capacity(raw.len());
        for map in raw {
            let Some((column, field)) = map.rsplit_once('=') else {
                return Err(ImportError::BadMap(map.clone()));
            };
            if column.is_empty() {
                return Err(ImportError::BadMap(map.clone()));
            }
            let field = if field.trim().is_empty() {
                None
            } else {
                Some(
                    Field::named(field).ok_or_else(|| ImportError::UnknownField {
                        map: map.clone(),
                        field: field.to_owned(),
                    })?,
                )
            };
            if maps.iter().any(|(c, _)| c == column) {
                return Err(ImportError::MapTwice(column.to_owned()));
            }
            maps.push((column.to_owned(), field));
        }
        Ok(Self(maps))
    }

    /// What a column gives: `Ok(None)` for an ignored column, `Err` for an unknown one.
    fn resolve(&self, column: &str) -> Result<Option<Field>, ()> {
        if let Some((_, field)) = self.0.iter().find(|(c, _)| c == column) {
            return Ok(*field);
        }
        Field::named(column).map(Some).ok_or(())
    }

    /// The columns of the maps that are not among `columns`.
    fn unused<'a>(&'a self, columns: &[String]) -> Option<&'a str> {
        self.0
            .iter()
            .map(|(c, _)| c.as_str())
            .find(|c| !columns.iter().any(|have| have == c))
    }
}

/// Why a row was rejected: a field path (empty for the row as a whole) and a message.
#[derive(Clone, Debug, Serialize)]
pub struct Reason {
    pub field: Vec<String>,
    pub message: String,
    pub code: &'static str,
}

impl Reason {
    fn of_row(message: impl Into<String>) -> Self {
        Self {
            field: Vec::new(),
            message: message.into(),
            code: code_name(ViolationCode::Invalid),
        }
    }

    fn of_field(field: Field, message: impl Into<String>) -> Self {
        Self {
            field: vec![field.name().to_owned()],
            message: message.into(),
            code: code_name(ViolationCode::Invalid),
        }
    }

    /// A violation the domain found in an item, its path taken below the item.
    fn of_violation(v: FieldViolation) -> Self {
        let field = match v.field.as_slice() {
            [items, index, rest @ ..]
                if items == "items" && index.bytes().all(|b| b.is_ascii_digit()) =>
            {
                rest.to_vec()
            }
            _ => v.field,
        };
        Self {
            field,
            message: v.message,
            code: code_name(v.code),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field.join("."), self.message)
        }
    }
}

/// The API's name of a violation code (`UserErrorCode`).
fn code_name(code: ViolationCode) -> &'static str {
    match code {
        ViolationCode::Required => "REQUIRED",
        ViolationCode::Invalid => "INVALID",
        ViolationCode::TooLong => "TOO_LONG",
        ViolationCode::TooMany => "TOO_MANY",
        ViolationCode::InvalidEmail => "INVALID_EMAIL",
        ViolationCode::InvalidPhone => "INVALID_PHONE",
        ViolationCode::NotFound => "NOT_FOUND",
        ViolationCode::Duplicate => "DUPLICATE",
        ViolationCode::VersionConflict => "VERSION_CONFLICT",
    }
}

/// A rejected row, as reported and as written to `--rejects` (one JSON object a line).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    /// The line of the file the row starts on (CSV: its record's first line).
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub errors: Vec<Reason>,
}

impl std::fmt::Display for Rejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: rejected", self.line)?;
        if let Some(key) = &self.external_id {
            write!(f, " (externalId {key:?})")?;
        }
        let reasons: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        write!(f, ": {}", reasons.join("; "))
    }
}

/// What an import did (or, for a dry run or an all-or-nothing import that was refused,
/// would have done).
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub read: u64,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub rejected: u64,
    pub elapsed: Duration,
    /// Whether the writes were committed.
    pub committed: bool,
}

impl Summary {
    pub fn rows_per_sec(&self) -> f64 {
        self.read as f64 / self.elapsed.as_secs_f64().max(0.000_001)
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "rows read: {}, created: {}, updated: {}, unchanged: {}, rejected: {} in {:.2} s ({:.0} rows/s)",
            self.read,
            self.created,
            self.updated,
            self.unchanged,
            self.rejected,
            self.elapsed.as_secs_f64(),
            self.rows_per_sec()
        )
    }
}

/// One row of the file, mapped.
struct Row {
    line: u64,
    /// The row's external id as given, for reports.
    key: Option<String>,
    item: Result<UpsertItem, Vec<Reason>>,
}

/// A chunk of the file, read, mapped and checked by the input rules: what the writing side
/// writes.
struct Batch {
    /// Rows read.
    read: u64,
    /// Rows refused before the database.
    rejected: Vec<Rejected>,
    /// The line of each item of `upsert`.
    lines: Vec<u64>,
    upsert: Option<CheckedUpsert>,
}

/// What the reading thread sends: a chunk, or why it stopped.
type Chunk = Result<Batch, ImportError>;

/// Imports the file into the tenant, printing the report to standard error; the summary.
/// Whether `path` names the file `input` is (the same file through another name, a link or
/// a symlink too): creating the rejects file would empty the input before it is read.
fn same_file(path: &Path, input: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).is_ok_and(|m| m.dev() == input.dev() && m.ino() == input.ino())
}

/// Rows are rejected, not errors; an error stops the import (in the default mode, the
/// chunks before it stay written).
pub async fn run(t: &Tenant, path: &Path, options: Options) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let shown = path.display().to_string();
    let format = match options.format {
        Some(format) => format,
        None => Format::of(path).ok_or_else(|| ImportError::UnknownFormat(shown.clone()))?,
    };
    let maps = Maps::parse(&options.maps)?;
    let file = File::open(path).map_err(|source| ImportError::Open {
        path: shown.clone(),
        source,
    })?;
    let metadata = file.metadata().map_err(|source| ImportError::Open {
        path: shown.clone(),
        source,
    })?;
    let bar = progress_bar(metadata.is_file().then_some(metadata.len()), options.quiet);
    let rejects = match &options.rejects {
        Some(rejects) if same_file(rejects, &metadata) => {
            return Err(ImportError::RejectsIsInput(rejects.display().to_string()));
        }
        Some(path) => Some(RejectsFile::create(path)?),
        None => None,
    };

    let (tx, mut rx) = mpsc::channel::<Chunk>(READ_AHEAD);
    let reader = Reader {
        path: path.to_owned(),
        shown: shown.clone(),
        seekable: metadata.is_file(),
        maps,
        source: options.source.clone(),
        seen: HashMap::new(),
        bar: bar.clone(),
    };
    std::thread::Builder::new()
        .name("crm-import-read".into())
        .spawn(move || reader.run(file, format, &tx))
        .map_err(|source| ImportError::Read {
            path: shown.clone(),
            source,
        })?;

    let whole_file = options.all_or_nothing || options.dry_run;
    let mut import = Import {
        t,
        txn: None,
        whole_file,
        analyze_at: CHUNK_ROWS as u64,
        summary: Summary::default(),
        rejects,
        quiet: options.quiet,
        bar: bar.clone(),
    };
    let outcome = async {
        while let Some(chunk) = rx.recv().await {
            import.write(chunk?).await?;
            bar.set_message(format!(
                "{} rows, {} rejected",
                import.summary.read, import.summary.rejected
            ));
        }
        import.finish(&options).await
    }
    .await;
    bar.finish_and_clear();
    import.summary.elapsed = started.elapsed();
    let summary = import.summary.clone();
    match outcome {
        Ok(()) => {
            report(&summary, &options);
            Ok(summary)
        }
        Err(err) => {
            if summary.read > 0 {
                eprintln!("{summary}");
                eprintln!(
                    "{}",
                    if whole_file || summary.created + summary.updated == 0 {
                        "stopped by an error: nothing was written"
                    } else {
                        "stopped by an error: the rows counted above were written, the rest not"
                    }
                );
            }
            Err(err)
        }
    }
}

fn report(summary: &Summary, options: &Options) {
    eprintln!("{summary}");
    let rows = |n: u64| if n == 1 { "row" } else { "rows" };
    if options.dry_run {
        eprintln!("dry run: nothing was written; the counts are what the import would do");
    } else if options.all_or_nothing && summary.rejected > 0 {
        eprintln!(
            "all or nothing: {} {} rejected, so nothing was written",
            summary.rejected,
            rows(summary.rejected)
        );
    } else if summary.rejected > 0 {
        eprintln!(
            "{} {} rejected and skipped; the others were written",
            summary.rejected,
            rows(summary.rejected)
        );
    }
    if let Some(path) = &options.rejects
        && summary.rejected > 0
    {
        eprintln!("rejected rows written to {}", path.display());
    }
}

fn progress_bar(len: Option<u64>, quiet: bool) -> ProgressBar {
    // Drawn only when standard error is a terminal.
    let target = if quiet {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(len, target);
    let template = if len.is_some() {
        "{spinner} [{elapsed_precise}] {wide_bar} {binary_bytes}/{binary_total_bytes} {msg}"
    } else {
        "{spinner} [{elapsed_precise}] {binary_bytes} {msg}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Statistics help an import along but are not needed: one that could not be refreshed
/// (another import's refresh holds the table's lock past the statement timeout) is logged.
fn refresh_statistics(done: Result<(), crate::domain::Error>) {
    if let Err(err) = done {
        tracing::warn!(error = %err, "the planner's statistics could not be refreshed; the import goes on");
    }
}

/// The writing side: the transactions, the counts and the report.
struct Import<'a> {
    t: &'a Tenant,
    /// The transaction of the whole file (all or nothing, dry run), once begun.
    txn: Option<WriteTxn>,
    whole_file: bool,
    /// Rows written after which the planner's statistics are refreshed next (tenfold).
    analyze_at: u64,
    summary: Summary,
    rejects: Option<RejectsFile>,
    quiet: bool,
    bar: ProgressBar,
}

impl Import<'_> {
    async fn write(&mut self, batch: Batch) -> Result<(), ImportError> {
        let Batch {
            read,
            mut rejected,
            lines,
            upsert,
        } = batch;
        self.summary.read += read;
        let results = match upsert {
            Some(upsert) => self.upsert(upsert).await?,
            None => Vec::new(),
        };
        for (result, line) in results.into_iter().zip(lines) {
            match result.status {
                UpsertStatus::Created => self.summary.created += 1,
                UpsertStatus::Updated => self.summary.updated += 1,
                UpsertStatus::Unchanged => self.summary.unchanged += 1,
                UpsertStatus::Invalid => rejected.push(Rejected {
                    line,
                    external_id: result.external_id,
                    errors: result
                        .violations
                        .into_iter()
                        .map(Reason::of_violation)
                        .collect(),
                }),
            }
        }
        rejected.sort_by_key(|r| r.line);
        self.summary.rejected += rejected.len() as u64;
        if !self.quiet && !rejected.is_empty() {
            self.bar.suspend(|| {
                for r in &rejected {
                    eprintln!("{r}");
                }
            });
        }
        if let Some(file) = &mut self.rejects {
            file.write(&rejected)?;
        }
        Ok(())
    }

    /// One chunk through the domain: in the file's transaction, or in one of its own.
    async fn upsert(
        &mut self,
        upsert: CheckedUpsert,
    ) -> Result<Vec<customers::UpsertResult>, ImportError> {
        if self.whole_file && self.txn.is_none() {
            self.txn = Some(self.t.store().write().await?);
        }
        let own = match self.txn.take() {
            Some(txn) => txn,
            None => self.t.store().write().await?,
        };
        // On an error the transaction is dropped here, which rolls it back.
        let results = customers::upsert_in(&own, self.t, upsert).await?;
        // Statistics after the first chunk, then each time the rows written grow tenfold:
        // what PostgreSQL needs to look keys up through their index rather than scan.
        let written = self.summary.created
            + self.summary.updated
            + results
                .iter()
                .filter(|r| matches!(r.status, UpsertStatus::Created | UpsertStatus::Updated))
                .count() as u64;
        let analyze = written >= self.analyze_at;
        if analyze {
            self.analyze_at = written.saturating_mul(10);
        }
        if self.whole_file {
            // Inside the file's transaction: only it can see the rows it wrote.
            if analyze {
                refresh_statistics(customers::refresh_statistics(&own).await);
            }
            self.txn = Some(own);
        } else {
            self.t.store().commit(own).await?;
            self.summary.committed = true;
            // After the commit, on the pool: a lock taken inside the chunk's transaction
            // would be held while it runs, and other imports' refreshes would wait on it.
            if analyze {
                refresh_statistics(customers::refresh_statistics_now(self.t).await);
            }
        }
        Ok(results)
    }

    /// Ends the file's transaction: committed, unless this is a dry run or a row was
    /// rejected in an all-or-nothing import (then dropped, which rolls it back).
    async fn finish(&mut self, options: &Options) -> Result<(), ImportError> {
        if let Some(file) = &mut self.rejects {
            file.flush()?;
        }
        let Some(txn) = self.txn.take() else {
            return Ok(());
        };
        if options.dry_run || self.summary.rejected > 0 {
            drop(txn);
            return Ok(());
        }
        self.t.store().commit(txn).await?;
        self.summary.committed = true;
        Ok(())
    }
}

struct RejectsFile {
    path: String,
    out: std::io::BufWriter<File>,
}

impl RejectsFile {
    fn create(path: &Path) -> Result<Self, ImportError> {
        let shown = path.display().to_string();
        let file = File::create(path).map_err(|source| ImportError::Rejects {
            path: shown.clone(),
            source,
        })?;
        Ok(Self {
            path: shown,
            out: std::io::BufWriter::new(file),
        })
    }

    fn write(&mut self, rejected: &[Rejected]) -> Result<(), ImportError> {
        for r in rejected {
            serde_json::to_writer(&mut self.out, r)
                .map_err(std::io::Error::from)
                .and_then(|()| self.out.write_all(b"\n"))
                .map_err(|source| self.error(source))?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ImportError> {
        self.out.flush().map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> ImportError {
        ImportError::Rejects {
            path: self.path.clone(),
            source,
        }
    }
}

/// The reading side, on a thread of its own: splits the file into rows, maps them, checks
/// them by the input rules, and sends them a chunk at a time.
struct Reader {
    path: PathBuf,
    shown: String,
    /// A regular file, which a JSON Lines import reads once ahead for its keys.
    seekable: bool,
    maps: Maps,
    source: String,
    /// Each external id of the file, with the line that first gave it.
    seen: HashMap<String, u64>,
    bar: ProgressBar,
}

impl Reader {
    fn run(mut self, file: File, format: Format, tx: &mpsc::Sender<Chunk>) {
        let input = BufReader::with_capacity(256 * 1024, file);
        let done = match format {
            Format::Csv => self.csv(input, tx),
            Format::Jsonl => self.jsonl(input, tx),
        };
        if let Err(err) = done {
            // The receiver is gone only when the import stopped already.
            let _ = tx.blocking_send(Err(err));
        }
    }

    fn read_error(&self, source: std::io::Error) -> ImportError {
        ImportError::Read {
            path: self.shown.clone(),
            source,
        }
    }

    /// Checks and sends a chunk; `false` when the import stopped.
    fn send(
        &mut self,
        rows: &mut Vec<Row>,
        position: u64,
        tx: &mpsc::Sender<Chunk>,
    ) -> Result<bool, ImportError> {
        let rows = std::mem::replace(rows, Vec::with_capacity(CHUNK_ROWS));
        let batch = self.batch(rows)?;
        self.bar.set_position(position);
        Ok(tx.blocking_send(Ok(batch)).is_ok())
    }

    fn batch(&mut self, rows: Vec<Row>) -> Result<Batch, ImportError> {
        let mut rejected = Vec::new();
        let mut items = Vec::with_capacity(rows.len());
        let mut lines = Vec::with_capacity(rows.len());
        let read = rows.len() as u64;
        for row in rows {
            let item = match row.item {
                Ok(item) => item,
                Err(errors) => {
                    rejected.push(Rejected {
                        line: row.line,
                        external_id: row.key,
                        errors,
                    });
                    continue;
                }
            };
            // A key given again further down the file: refused as the API refuses it in
            // one call, whichever chunk the rows fall in.
            if let Some(key) = item.external_id.as_deref().map(str::trim)
                && !key.is_empty()
            {
                match self.seen.entry(key.to_owned()) {
                    Entry::Occupied(first) => {
                        rejected.push(Rejected {
                            line: row.line,
                            external_id: row.key,
                            errors: vec![Reason {
                                field: vec![Field::ExternalId.name().to_owned()],
                                message: format!(
                                    "is given to an earlier row (line {})",
                                    first.get()
                                ),
                                code: code_name(ViolationCode::Duplicate),
                            }],
                        });
                        continue;
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(row.line);
                    }
                }
            }
            items.push(item);
            lines.push(row.line);
        }
        let upsert = if items.is_empty() {
            None
        } else {
            Some(CheckedUpsert::new(Upsert {
                source: self.source.clone(),
                items,
            })?)
        };
        Ok(Batch {
            read,
            rejected,
            lines,
            upsert,
        })
    }

    fn csv(&mut self, input: BufReader<File>, tx: &mpsc::Sender<Chunk>) -> Result<(), ImportError> {
        let mut records = CsvRecords::new(input);
        let header = records
            .next_record()
            .map_err(|e| self.read_error(e))?
            .ok_or_else(|| ImportError::BadHeader {
                path: self.shown.clone(),
                reason: "the file is empty".into(),
            })?;
        let header = header.fields.map_err(|reason| ImportError::BadHeader {
            path: self.shown.clone(),
            reason,
        })?;
        let columns = self.columns(&header)?;
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        while let Some(record) = records.next_record().map_err(|e| self.read_error(e))? {
            rows.push(csv_row(&columns, &header, record));
            if rows.len() == CHUNK_ROWS && !self.send(&mut rows, records.consumed, tx)? {
                return Ok(());
            }
        }
        if !rows.is_empty() {
            self.send(&mut rows, records.consumed, tx)?;
        }
        Ok(())
    }

    /// The field of each column of the header, every column known or refused.
    fn columns(&self, header: &[String]) -> Result<Vec<Option<Field>>, ImportError> {
        if let Some(unused) = self.maps.unused(header) {
            return Err(ImportError::UnusedMap(
                unused.to_owned(),
                format!("the header of {}", self.shown),
            ));
        }
        let mut columns = Vec::with_capacity(header.len());
        let mut unknown = Vec::new();
        for column in header {
            match self.maps.resolve(column) {
                Ok(field) => columns.push(field),
                Err(()) => unknown.push(column.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(ImportError::UnknownColumns(unknown));
        }
        for (i, field) in columns.iter().enumerate() {
            let Some(field) = field else { continue };
            if let Some(j) = columns[..i].iter().position(|f| f == &Some(*field)) {
                return Err(ImportError::SameField(
                    header[j].clone(),
                    header[i].clone(),
                    field.name(),
                ));
            }
        }
        if !columns.contains(&Some(Field::Name)) {
            return Err(ImportError::NoName(self.shown.clone()));
        }
        Ok(columns)
    }

    fn jsonl(
        &mut self,
        input: BufReader<File>,
        tx: &mpsc::Sender<Chunk>,
    ) -> Result<(), ImportError> {
        if self.seekable {
            self.check_keys()?;
        }
        let mut lines = Lines::new(input);
        let mut rows = Vec::with_capacity(CHUNK_ROWS);
        while let Some((line, text)) = lines.next_line().map_err(|e| self.read_error(e))? {
            rows.push(self.jsonl_row(line, text));
            if rows.len() == CHUNK_ROWS && !self.send(&mut rows, lines.consumed, tx)? {
                return Ok(());
            }
        }
        if !rows.is_empty() {
            self.send(&mut rows, lines.consumed, tx)?;
        }
        Ok(())
    }

    /// Reads the file once ahead for its keys, so that an unknown one is refused before
    /// anything is written, as a CSV header is. Malformed lines are left to the import.
    fn check_keys(&self) -> Result<(), ImportError> {
        let file = File::open(&self.path).map_err(|e| self.read_error(e))?;
        let mut lines = Lines::new(BufReader::with_capacity(256 * 1024, file));
        let mut keys: Vec<String> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut unknown: Vec<String> = Vec::new();
        while let Some((_, text)) = lines.next_line().map_err(|e| self.read_error(e))? {
            let Ok(text) = text else { continue };
            let Ok(object) =
                serde_json::from_slice::<HashMap<String, serde::de::IgnoredAny>>(&text)
            else {
                continue;
            };
            for key in object.into_keys() {
                if !seen.insert(key.clone()) {
                    continue;
                }
                if self.maps.resolve(&key).is_err() {
                    unknown.push(key.clone());
                    // Enough to name the problem; the rest would only flood the terminal.
                    if unknown.len() >= MAX_NAMED_UNKNOWN {
                        return Err(ImportError::UnknownColumns(unknown));
                    }
                }
                keys.push(key);
            }
        }
        if let Some(unused) = self.maps.unused(&keys) {
            return Err(ImportError::UnusedMap(
                unused.to_owned(),
                format!("no line of {}", self.shown),
            ));
        }
        if !unknown.is_empty() {
            return Err(ImportError::UnknownColumns(unknown));
        }
        Ok(())
    }

    fn jsonl_row(&self, line: u64, text: Result<Vec<u8>, String>) -> Row {
        let rejected = |reason: Reason| Row {
            line,
            key: None,
            item: Err(vec![reason]),
        };
        let text = match text {
            Ok(text) => text,
            Err(reason) => return rejected(Reason::of_row(reason)),
        };
        let object = match serde_json::from_slice::<Value>(&text) {
            Ok(Value::Object(object)) => object,
            Ok(_) => return rejected(Reason::of_row("is not a JSON object")),
            Err(err) => return rejected(Reason::of_row(format!("is not valid JSON: {err}"))),
        };
        let mut cells = Cells::default();
        for (key, value) in object {
            match self.maps.resolve(&key) {
                Ok(Some(field)) => cells.json(field, &key, value),
                Ok(None) => {}
                Err(()) => cells.errors.push(Reason {
                    field: vec![key.clone()],
                    message: format!(
                        "is no field (the fields are: {}); read it as one with --map '{key}=FIELD' or ignore it with --map '{key}='",
                        field_list()
                    ),
                    code: code_name(ViolationCode::Invalid),
                }),
            }
        }
        cells.into_row(line)
    }
}

/// A row's fields as they are read, and what was wrong with them.
#[derive(Default)]
struct Cells {
    item: UpsertItem,
    /// The fields given, to refuse one given twice (two keys of a JSON line).
    given: Vec<Field>,
    errors: Vec<Reason>,
}

impl Cells {
    fn into_row(self, line: u64) -> Row {
        let key = self.item.external_id.clone();
        Row {
            line,
            key,
            item: if self.errors.is_empty() {
                Ok(self.item)
            } else {
                Err(self.errors)
            },
        }
    }

    fn give(&mut self, field: Field, column: &str) -> bool {
        if self.given.contains(&field) {
            self.errors.push(Reason::of_field(
                field,
                format!("is given twice (again by `{column}`)"),
            ));
            return false;
        }
        self.given.push(field);
        true
    }

    /// A CSV cell: empty leaves the field out.
    fn csv(&mut self, field: Field, column: &str, cell: String) {
        if cell.trim().is_empty() || !self.give(field, column) {
            return;
        }
        let item = &mut self.item;
        match field {
            Field::ExternalId => item.external_id = Some(cell),
            Field::Name => item.name = cell,
            Field::Email => item.email = Some(Some(cell)),
            Field::Phone => item.phone = Some(Some(cell)),
            Field::Company => item.company = Some(Some(cell)),
            Field::OwnerId => item.owner_id = Some(Some(cell.trim().to_owned())),
            Field::LifecycleStage => match stage(&cell) {
                Ok(stage) => item.lifecycle_stage = Some(stage),
                Err(reason) => self.errors.push(reason),
            },
            Field::Tags => {
                let text = cell.trim();
                if text.starts_with('[') {
                    match serde_json::from_str::<Vec<String>>(text) {
                        Ok(tags) => item.tags = Some(tags),
                        Err(_) => self.errors.push(Reason::of_field(
                            field,
                            "is not a JSON array of strings (or a `;`-separated list)",
                        )),
                    }
                } else {
                    item.tags = Some(
                        text.split(';')
                            .map(str::trim)
                            .filter(|tag| !tag.is_empty())
                            .map(str::to_owned)
                            .collect(),
                    );
                }
            }
            Field::CustomFields => match serde_json::from_str::<Value>(&cell) {
                Ok(value) => item.custom_fields = Some(value),
                Err(err) => self
                    .errors
                    .push(Reason::of_field(field, format!("is not valid JSON: {err}"))),
            },
        }
    }

    /// A JSON value: `null` clears a nullable field (as in `upsertCustomers`) and leaves
    /// the others out.
    fn json(&mut self, field: Field, key: &str, value: Value) {
        if !self.give(field, key) {
            return;
        }
        let wrong = |what: &str| Reason::of_field(field, format!("must be {what}"));
        let item = &mut self.item;
        match (field, value) {
            (_, Value::Null) => match field {
                Field::Email => item.email = Some(None),
                Field::Phone => item.phone = Some(None),
                Field::Company => item.company = Some(None),
                Field::OwnerId => item.owner_id = Some(None),
                _ => {}
            },
            (Field::ExternalId, Value::String(s)) => item.external_id = Some(s),
            // A number beyond 64 bits, or with a fraction or exponent, arrives rounded: two
            // keys would become one.
            (Field::ExternalId, Value::Number(n)) if n.is_u64() || n.is_i64() => {
                item.external_id = Some(n.to_string())
            }
            (Field::ExternalId, Value::Number(_)) => self.errors.push(wrong(
                "a string, or an integer of at most 64 bits (send larger ids as strings)",
            )),
            (Field::Name, Value::String(s)) => item.name = s,
            (Field::Email, Value::String(s)) => item.email = Some(Some(s)),
            (Field::Phone, Value::String(s)) => item.phone = Some(Some(s)),
            (Field::Company, Value::String(s)) => item.company = Some(Some(s)),
            (Field::OwnerId, Value::String(s)) => item.owner_id = Some(Some(s)),
            (Field::LifecycleStage, Value::String(s)) => match stage(&s) {
                Ok(stage) => item.lifecycle_stage = Some(stage),
                Err(reason) => self.errors.push(reason),
            },
            (Field::Tags, Value::Array(values)) => {
                let tags: Option<Vec<String>> = values
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                match tags {
                    Some(tags) => item.tags = Some(tags),
                    None => self.errors.push(wrong("an array of strings")),
                }
            }
            (Field::CustomFields, value) => item.custom_fields = Some(value),
            (Field::Tags, _) => self.errors.push(wrong("an array of strings")),
            (Field::ExternalId, _) => self.errors.push(wrong("a string")),
            _ => self.errors.push(wrong("a string")),
        }
    }
}

fn stage(text: &str) -> Result<LifecycleStage, Reason> {
    text.trim().to_ascii_uppercase().parse().map_err(|_| {
        Reason::of_field(
            Field::LifecycleStage,
            "must be one of LEAD, PROSPECT, CUSTOMER, CHURNED",
        )
    })
}

fn csv_row(columns: &[Option<Field>], header: &[String], record: Record) -> Row {
    let fields = match record.fields {
        Ok(fields) => fields,
        Err(reason) => {
            return Row {
                line: record.line,
                key: None,
                item: Err(vec![Reason::of_row(reason)]),
            };
        }
    };
    if fields.len() != columns.len() {
        return Row {
            line: record.line,
            key: None,
            item: Err(vec![Reason::of_row(format!(
                "has {} fields where the header has {}",
                fields.len(),
                columns.len()
            ))]),
        };
    }
    let mut cells = Cells::default();
    for ((cell, field), column) in fields.into_iter().zip(columns).zip(header) {
        if let Some(field) = field {
            cells.csv(*field, column, cell);
        }
    }
    cells.into_row(record.line)
}

/// One CSV record: the line it starts on, and its fields or why it cannot be read.
struct Record {
    line: u64,
    fields: Result<Vec<String>, String>,
}

/// Counts lines as bytes go by: `\n`, `\r\n` and `\r` each end one.
struct LineCount {
    /// The line the next byte is on.
    line: u64,
    /// The last byte was a `\r`: a `\n` right after it belongs to the same line end.
    after_cr: bool,
}

impl LineCount {
    fn advance(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\r' || (b == b'\n' && !self.after_cr) {
                self.line += 1;
            }
            self.after_cr = b == b'\r';
        }
    }
}

/// A streaming CSV splitter (RFC 4180: `,` between fields, `"` quoting with `""` for a
/// quote, records ending in `\n`, `\r\n` or `\r`, blank lines skipped, a UTF-8 BOM
/// ignored) that never holds more than [`MAX_RECORD_BYTES`] of a record: the rest of a
/// longer one is skipped up to its end, and the record is reported as too long.
///
/// The parsing is `csv_core`'s; this adds line numbers, the bound, and the report of a
/// quote left open at the end of the file.
struct CsvRecords<R> {
    input: R,
    csv: csv_core::Reader,
    /// `csv` has not been given any input yet.
    fresh: bool,
    lines: LineCount,
    /// Bytes consumed so far.
    consumed: u64,
}

impl<R: BufRead> CsvRecords<R> {
    fn new(mut input: R) -> Self {
        let consumed = skip_bom(&mut input);
        Self {
            input,
            csv: csv_core::ReaderBuilder::new()
                .terminator(csv_core::Terminator::CRLF)
                .build(),
            fresh: true,
            lines: LineCount {
                line: 1,
                after_cr: false,
            },
            consumed,
        }
    }

    fn next_record(&mut self) -> std::io::Result<Option<Record>> {
        let mut out = [0u8; 16 * 1024];
        let mut start: Option<u64> = None;
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut size = 0usize;
        let mut too_long = false;
        loop {
            let buf = self.input.fill_buf()?;
            if buf.is_empty() {
                let Some(line) = start else { return Ok(None) };
                // csv-core takes the end of the input as the end of the record, even
                // inside quotes. A line end tells the two apart: it ends the record,
                // unless a quoted field is still open, where it is only more data.
                let (result, _, _) = self.csv.read_field(b"\n", &mut out);
                let unterminated = !matches!(result, csv_core::ReadFieldResult::Field { .. });
                fields.push(field);
                return Ok(Some(finish(line, fields, too_long, unterminated)));
            }
            let mut used = 0;
            if start.is_none() {
                // Blank lines, and the `\n` of a `\r\n` that ended the last record.
                used = buf
                    .iter()
                    .take_while(|&&b| b == b'\n' || b == b'\r')
                    .count();
                self.lines.advance(&buf[..used]);
                if used < buf.len() {
                    start = Some(self.lines.line);
                }
            }
            let mut ended = false;
            while start.is_some() && !ended && used < buf.len() {
                // csv-core drops a BOM at the start of its first input. The file's own was
                // skipped in `new`, so its first input is one byte: a second BOM is data.
                let end = if self.fresh { used + 1 } else { buf.len() };
                self.fresh = false;
                let (result, read, written) = self.csv.read_field(&buf[used..end], &mut out);
                self.lines.advance(&buf[used..used + read]);
                used += read;
                size += read;
                if size > MAX_RECORD_BYTES && !too_long {
                    too_long = true;
                    fields = Vec::new();
                    field = Vec::new();
                }
                if !too_long {
                    field.extend_from_slice(&out[..written]);
                }
                match result {
                    csv_core::ReadFieldResult::Field { record_end } => {
                        ended = record_end;
                        if !ended && !too_long {
                            fields.push(std::mem::take(&mut field));
                        }
                    }
                    csv_core::ReadFieldResult::InputEmpty
                    | csv_core::ReadFieldResult::OutputFull => {}
                    // Only answers an empty input, which it is never given here.
                    csv_core::ReadFieldResult::End => ended = true,
                }
            }
            self.input.consume(used);
            self.consumed += used as u64;
            if ended {
                fields.push(field);
                let line = start.unwrap_or(self.lines.line);
                return Ok(Some(finish(line, fields, too_long, false)));
            }
        }
    }
}

fn finish(line: u64, fields: Vec<Vec<u8>>, too_long: bool, unterminated: bool) -> Record {
    let fields = if too_long {
        Err(format!(
            "is longer than {} MiB",
            MAX_RECORD_BYTES / (1024 * 1024)
        ))
    } else if unterminated {
        Err("has a quoted field that never ends (a `\"` is missing)".to_owned())
    } else {
        fields
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| {
                String::from_utf8(bytes).map_err(|_| format!("field {} is not valid UTF-8", i + 1))
            })
            .collect()
    };
    Record { line, fields }
}

/// Skips a UTF-8 byte order mark at the start of `input`; the bytes it skipped.
fn skip_bom(input: &mut impl BufRead) -> u64 {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    match input.fill_buf() {
        Ok(buf) if buf.starts_with(BOM) => {
            input.consume(BOM.len());
            BOM.len() as u64
        }
        _ => 0,
    }
}

/// Lines of a file, each at most [`MAX_RECORD_BYTES`] (the rest of a longer one is
/// skipped and the line reported as too long), blank ones skipped, `\r\n` taken as `\n`,
/// a UTF-8 BOM ignored.
struct Lines<R> {
    input: R,
    line: u64,
    consumed: u64,
}

impl<R: BufRead> Lines<R> {
    fn new(mut input: R) -> Self {
        let consumed = skip_bom(&mut input);
        Self {
            input,
            line: 0,
            consumed,
        }
    }

    #[allow(
        clippy::type_complexity,
        reason = "a line number and the line or why not"
    )]
    fn next_line(&mut self) -> std::io::Result<Option<(u64, Result<Vec<u8>, String>)>> {
        loop {
            let mut text = Vec::new();
            let mut too_long = false;
            let mut any = false;
            loop {
                let buf = self.input.fill_buf()?;
                if buf.is_empty() {
                    break;
                }
                any = true;
                let (piece, end) = match buf.iter().position(|&b| b == b'\n') {
                    Some(at) => (&buf[..at], Some(at + 1)),
                    None => (buf, None),
                };
                if !too_long {
                    if text.len() + piece.len() > MAX_RECORD_BYTES {
                        too_long = true;
                        text = Vec::new();
                    } else {
                        text.extend_from_slice(piece);
                    }
                }
                let used = end.unwrap_or(buf.len());
                self.input.consume(used);
                self.consumed += used as u64;
                if end.is_some() {
                    break;
                }
            }
            if !any {
                return Ok(None);
            }
            self.line += 1;
            if too_long {
                let reason = format!("is longer than {} MiB", MAX_RECORD_BYTES / (1024 * 1024));
                return Ok(Some((self.line, Err(reason))));
            }
            if text.last() == Some(&b'\r') {
                text.pop();
            }
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some((self.line, Ok(text))));
        }
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a test fails loudly")]
mod tests {
    use super::*;

    fn records(text: &[u8]) -> Vec<(u64, Result<Vec<String>, String>)> {
        let mut reader = CsvRecords::new(text);
        let mut out = Vec::new();
        while let Some(r) = reader.next_record().expect("in memory") {
            out.push((r.line, r.fields));
        }
        out
    }

    fn ok(fields: &[&str]) -> Result<Vec<String>, String> {
        Ok(fields.iter().map(|f| (*f).to_owned()).collect())
    }

    #[test]
    fn csv_records_follow_rfc_4180() {
        let text = b"\xEF\xBB\xBFname,email\r\nAda,a@x.io\r\n\r\n\"Bob, \"\"B\"\"\",\"b\nc\"\nCy,\n\"x\"y,z";
        assert_eq!(
            records(text),
            vec![
                (1, ok(&["name", "email"])),
                (2, ok(&["Ada", "a@x.io"])),
                (4, ok(&["Bob, \"B\"", "b\nc"])),
                (6, ok(&["Cy", ""])),
                (7, ok(&["xy", "z"])),
            ]
        );
        // A quote inside an unquoted field is a character like any other.
        assert_eq!(records(b"a\"b,c\n"), vec![(1, ok(&["a\"b", "c"]))]);
    }

    #[test]
    fn a_bad_record_is_reported_and_the_next_one_read() {
        let mut text = b"a,b\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 10));
        // A quote that never closes takes the rest of the file as its record.
        text.extend(b"\nc,d\n\"open,e\nf,g\n");
        let found = records(&text);
        let lines: Vec<u64> = found.iter().map(|r| r.0).collect();
        assert_eq!(lines, [1, 2, 3, 4]);
        assert_eq!(found[0].1, ok(&["a", "b"]));
        assert!(found[1].1.as_ref().is_err_and(|e| e.contains("longer")));
        assert_eq!(found[2].1, ok(&["c", "d"]));
        assert!(found[3].1.as_ref().is_err_and(|e| e.contains("never ends")));
        let utf8 = records(b"a,\xff\n");
        assert!(utf8[0].1.as_ref().is_err_and(|e| e.contains("UTF-8")));
    }

    #[test]
    fn csv_records_do_not_depend_on_how_the_input_is_buffered() {
        let text: &[u8] = b"\xEF\xBB\xBFa,b\r\r\n\"x\r\ny\",\"z\"\"\"\rc,\n\n\"q\",\"open\nend";
        let whole = records(text);
        assert_eq!(whole[0], (1, ok(&["a", "b"])));
        assert_eq!(whole[1], (3, ok(&["x\r\ny", "z\""])));
        assert_eq!(whole[2], (5, ok(&["c", ""])));
        assert_eq!(whole[3].0, 7);
        assert!(whole[3].1.as_ref().is_err_and(|e| e.contains("never ends")));
        assert_eq!(whole.len(), 4);
        // One byte at a time (after the BOM, which `new` needs whole in its first buffer).
        let rest = &text[3..];
        let mut reader = CsvRecords::new(std::io::BufReader::with_capacity(1, rest));
        let mut bytewise = Vec::new();
        while let Some(r) = reader.next_record().expect("in memory") {
            bytewise.push((r.line, r.fields));
        }
        assert_eq!(bytewise, whole);
        assert_eq!(reader.consumed, rest.len() as u64);
        // A quote closed right at the end of the file ends its record.
        assert_eq!(records(b"a,\"b\""), vec![(1, ok(&["a", "b"]))]);
    }

    #[test]
    fn lines_are_bounded_and_numbered() {
        let mut text = b"{}\r\n\n  \n".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_RECORD_BYTES + 1));
        text.extend(b"\n{\"a\":1}");
        let mut lines = Lines::new(text.as_slice());
        let mut found = Vec::new();
        while let Some((line, text)) = lines.next_line().expect("in memory") {
            found.push((line, text.map(|t| String::from_utf8(t).expect("text"))));
        }
        assert_eq!(found[0], (1, Ok("{}".to_owned())));
        assert_eq!(found[1].0, 4);
        assert!(found[1].1.is_err());
        assert_eq!(found[2], (5, Ok("{\"a\":1}".to_owned())));
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn columns_match_fields_loosely_or_through_maps() {
        let maps =
            Maps::parse(&["E-mail address=email".to_owned(), "id=".to_owned()]).expect("maps");
        assert_eq!(maps.resolve("E-mail address"), Ok(Some(Field::Email)));
        assert_eq!(maps.resolve("id"), Ok(None));
        assert_eq!(
            maps.resolve("Lifecycle_Stage"),
            Ok(Some(Field::LifecycleStage))
        );
        assert_eq!(maps.resolve("external id"), Ok(Some(Field::ExternalId)));
        assert_eq!(maps.resolve("nickname"), Err(()));
        assert!(Maps::parse(&["x=nope".to_owned()]).is_err());
        assert!(Maps::parse(&["novalue".to_owned()]).is_err());
    }
}
