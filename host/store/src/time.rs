//! Timestamps in SQL: RFC 3339 UTC text with nine fraction digits.
//!
//! Invariant: every stored timestamp has the same width, so SQL text order is time order
//! and values round-trip to the nanosecond.

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Row;
use rusqlite::types::Type;

/// The stored spelling of `t`.
pub(crate) fn to_sql(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

/// The stored spelling of an optional time.
pub(crate) fn opt_to_sql(t: Option<&DateTime<Utc>>) -> Option<String> {
    t.map(to_sql)
}

/// Parses a stored timestamp, reporting a bad one as a conversion failure of column `idx`.
fn parse(idx: usize, text: &str) -> rusqlite::Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

/// Reads a required timestamp column.
pub(crate) fn get(row: &Row<'_>, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    let text: String = row.get(idx)?;
    parse(idx, &text)
}

/// Reads a nullable timestamp column.
pub(crate) fn get_opt(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| parse(idx, &t)).transpose()
}

/// The current time, as stored.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now()
}
