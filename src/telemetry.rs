//! Logs on stderr (stdout carries the start-up banner and command output), filtered by
//! `RUST_LOG` (default `info`): readable lines, coloured only on a terminal, or with
//! `CRM_LOG_FORMAT=json` one JSON object per line for log collectors, each carrying its
//! request's span (method, path, request id).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// The log formats `CRM_LOG_FORMAT` names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, strum::EnumString, strum::Display)]
#[strum(serialize_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
#[error("CRM_LOG_FORMAT must be `text` or `json` (got `{0}`)")]
pub struct UnknownFormat(String);

/// The format `CRM_LOG_FORMAT` asks for (`text` when unset).
pub fn format_from_env() -> Result<LogFormat, UnknownFormat> {
    match std::env::var("CRM_LOG_FORMAT") {
        Ok(value) if !value.trim().is_empty() => value
            .trim()
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| UnknownFormat(value)),
        _ => Ok(LogFormat::Text),
    }
}

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .flatten_event(true)
            .try_init(),
    };
}
