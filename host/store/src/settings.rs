//! Per-app settings (capabilities and limits the host enforces) and per-app configuration
//! values and secrets.
//!
//! Invariants:
//! - Every stored setting passed [`AppSettings::validate`]; an app without a row has
//!   [`AppSettings::default`], which grants no capability (no key-value store, no HTTP).
//! - A configuration value belongs to an app (version 0 in SQL, `None` here: every
//!   version) or to one stored version of it; for a version the version-specific value
//!   wins over the app-wide one. Secret values are kept as given (the runtime needs
//!   them); hiding them from answers is the API's job.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::model::{APP_PREFIX, is_id};
use crate::{Store, StoreError};

/// Default total size of an app's key-value state (keys plus values), in bytes.
pub const DEFAULT_KV_MAX_BYTES: u64 = 1024 * 1024;
/// Default timeout of an app's outbound HTTP request, in milliseconds.
pub const DEFAULT_HTTP_TIMEOUT_MS: u32 = 5000;
/// Default largest HTTP response body an app may receive, in bytes.
pub const DEFAULT_HTTP_MAX_RESPONSE_BYTES: u64 = 1024 * 1024;

const MIB: u64 = 1024 * 1024;
/// The most memory an app may be given: the runtime's per-instance slot (pbx-plugin's
/// `RuntimeConfig` default), which a larger per-app value could not exceed anyway.
pub const MAX_APP_MEMORY_BYTES: u64 = 64 * MIB;
/// The longest CPU deadline per event an app may be given: the runtime's own.
pub const MAX_APP_EVENT_DEADLINE_MS: u32 = 200;
/// Most hosts on one app's HTTP allow-list.
const MAX_HTTP_ALLOW: usize = 64;
/// Most configuration entries of one app (all versions together).
const MAX_CONFIG_ENTRIES: i64 = 256;
/// Longest configuration value, in bytes.
const MAX_CONFIG_VALUE_BYTES: usize = 16 * 1024;

/// What an app may do beyond handling calls, and its resource limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSettings {
    /// The app may use its key-value store.
    pub kv_enabled: bool,
    /// Total bytes (keys plus values) the app's key-value store may hold.
    pub kv_max_bytes: u64,
    /// Hosts (`name` or `name:port`, lowercase; IP addresses allowed) the app may send
    /// HTTP requests to; empty means no HTTP at all.
    pub http_allow: Vec<String>,
    /// Timeout of one HTTP request, 1 to 30000 ms.
    pub http_timeout_ms: u32,
    /// Largest HTTP response body the app receives, in bytes.
    pub http_max_response_bytes: u64,
    /// Memory cap of one instance; `None` is the server's default.
    pub max_memory_bytes: Option<u64>,
    /// CPU deadline of one event; `None` is the server's default.
    pub event_deadline_ms: Option<u32>,
}

impl Default for AppSettings {
    fn default() -> Self {
        AppSettings {
            kv_enabled: false,
            kv_max_bytes: DEFAULT_KV_MAX_BYTES,
            http_allow: Vec::new(),
            http_timeout_ms: DEFAULT_HTTP_TIMEOUT_MS,
            http_max_response_bytes: DEFAULT_HTTP_MAX_RESPONSE_BYTES,
            max_memory_bytes: None,
            event_deadline_ms: None,
        }
    }
}

/// A change to an app's settings: `None` keeps a field; for the nullable ones,
/// `Some(None)` returns to the server's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppSettingsPatch {
    /// See [`AppSettings::kv_enabled`].
    pub kv_enabled: Option<bool>,
    /// See [`AppSettings::kv_max_bytes`].
    pub kv_max_bytes: Option<u64>,
    /// See [`AppSettings::http_allow`].
    pub http_allow: Option<Vec<String>>,
    /// See [`AppSettings::http_timeout_ms`].
    pub http_timeout_ms: Option<u32>,
    /// See [`AppSettings::http_max_response_bytes`].
    pub http_max_response_bytes: Option<u64>,
    /// See [`AppSettings::max_memory_bytes`].
    pub max_memory_bytes: Option<Option<u64>>,
    /// See [`AppSettings::event_deadline_ms`].
    pub event_deadline_ms: Option<Option<u32>>,
}

fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
    unit: &str,
) -> Result<(), StoreError> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(StoreError::invalid(
            field,
            format!("must be from {} to {} {unit}", range.start(), range.end()),
        ))
    }
}

impl AppSettings {
    /// Checks every field: key-value size 1 KiB to 64 MiB, HTTP timeout 1 to 30000 ms,
    /// HTTP response size 1 B to 16 MiB, memory 1 MiB to [`MAX_APP_MEMORY_BYTES`], event
    /// deadline 10 ms to [`MAX_APP_EVENT_DEADLINE_MS`], at most 64 allowed hosts, each a
    /// lowercase DNS name (or `*.name`) or IP with an optional `:port`.
    pub fn validate(&self) -> Result<(), StoreError> {
        in_range("kv_max_bytes", self.kv_max_bytes, 1024..=64 * MIB, "bytes")?;
        in_range("http_timeout_ms", self.http_timeout_ms, 1..=30_000, "ms")?;
        in_range(
            "http_max_response_bytes",
            self.http_max_response_bytes,
            1..=16 * MIB,
            "bytes",
        )?;
        if let Some(memory) = self.max_memory_bytes {
            in_range(
                "max_memory_bytes",
                memory,
                MIB..=MAX_APP_MEMORY_BYTES,
                "bytes",
            )?;
        }
        if let Some(deadline) = self.event_deadline_ms {
            in_range(
                "event_deadline_ms",
                deadline,
                10..=MAX_APP_EVENT_DEADLINE_MS,
                "ms",
            )?;
        }
        if self.http_allow.len() > MAX_HTTP_ALLOW {
            return Err(StoreError::invalid(
                "http_allow",
                format!("at most {MAX_HTTP_ALLOW} hosts"),
            ));
        }
        for entry in &self.http_allow {
            HttpAllowEntry::parse(entry)?;
        }
        Ok(())
    }
}

/// The host of an HTTP allow-list entry ([`HttpAllowEntry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpAllowHost<'a> {
    /// A lowercase DNS name; `wildcard` for `*.name`, which allows any subdomain of `name`
    /// (`name` is then written without the `*.`).
    Name {
        /// The name.
        name: &'a str,
        /// Whether the entry was `*.name`.
        wildcard: bool,
    },
    /// An IPv4 address, or an IPv6 address written in brackets.
    Address(IpAddr),
}

/// One entry of an app's HTTP allow-list, parsed: a lowercase DNS name (`*.name` for any
/// subdomain of it), an IPv4 address or a bracketed IPv6 address, with an optional `:port`
/// of 1 to 65535. This is the one reading of the grammar on the configuration side (the
/// store's validation and the API's address policy); the runtime matches requests with
/// `pbx_plugin::is_valid_http_allow_entry`'s, and pbx's capabilities tests hold every
/// entry accepted here to be one the runtime reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpAllowEntry<'a> {
    /// Where requests may go.
    pub host: HttpAllowHost<'a>,
    /// The only port allowed; `None` allows every port.
    pub port: Option<u16>,
}

impl<'a> HttpAllowEntry<'a> {
    /// Parses `entry`; the error names the entry and what is wrong with it, for the field
    /// `http_allow`.
    pub fn parse(entry: &'a str) -> Result<Self, StoreError> {
        parse_allow_entry(entry)
            .map_err(|problem| StoreError::invalid("http_allow", format!("{entry:?} {problem}")))
    }
}

/// [`HttpAllowEntry::parse`], with what is wrong as a phrase.
fn parse_allow_entry(entry: &str) -> Result<HttpAllowEntry<'_>, &'static str> {
    if entry.parse::<Ipv6Addr>().is_ok() {
        return Err("is an IPv6 address without brackets: write [addr] or [addr]:port");
    }
    let (v6, name, port) = match entry.strip_prefix('[') {
        Some(rest) => {
            let (addr, after) = rest.split_once(']').ok_or("has an unclosed [")?;
            let addr: Ipv6Addr = addr.parse().map_err(|_| "is not a valid IPv6 address")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("has text after its IPv6 address")?,
                ),
            };
            (Some(addr), "", port)
        }
        None => match entry.rsplit_once(':') {
            Some((host, port)) => (None, host, Some(port)),
            None => (None, entry, None),
        },
    };
    let port = match port {
        Some(text) => Some(port_number(text).ok_or("has a port that is not 1 to 65535")?),
        None => None,
    };
    let host = match v6 {
        Some(addr) => HttpAllowHost::Address(IpAddr::V6(addr)),
        None => name_host(name)?,
    };
    Ok(HttpAllowEntry { host, port })
}

/// A port of 1 to 65535 written in decimal digits only (no sign, no space).
fn port_number(text: &str) -> Option<u16> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|port| *port > 0)
}

/// A host name (or `*.name`) or IPv4 address, or what is wrong with it.
fn name_host(host: &str) -> Result<HttpAllowHost<'_>, &'static str> {
    let (name, wildcard) = match host.strip_prefix("*.") {
        Some(name) => (name, true),
        None => (host, false),
    };
    if !wildcard && let Ok(v4) = name.parse::<Ipv4Addr>() {
        return Ok(HttpAllowHost::Address(IpAddr::V4(v4)));
    }
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    if labels_ok {
        Ok(HttpAllowHost::Name { name, wildcard })
    } else {
        Err("is not a lowercase host name or IP address")
    }
}

/// One configuration value as stored, for the admin API (which hides secret values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigValue {
    /// `[A-Za-z0-9_.-]{1,64}`.
    pub name: String,
    /// The version it applies to; `None` for every version.
    pub version: Option<u32>,
    /// The value, up to 16 KiB.
    pub value: String,
    /// Write-only through the API.
    pub secret: bool,
}

/// One configuration value as an app version sees it, after version-specific values
/// have overridden app-wide ones.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigEntry {
    /// The name.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether it was stored as a secret (the runtime may keep it out of logs).
    pub secret: bool,
}

fn validate_config_name(name: &str) -> Result<(), StoreError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(StoreError::invalid(
            "name",
            "must be 1 to 64 characters of A-Z a-z 0-9 _ . -",
        ))
    }
}

fn settings_from_row(row: &Row<'_>) -> rusqlite::Result<AppSettings> {
    let allow: String = row.get(2)?;
    let http_allow = serde_json::from_str(&allow).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(AppSettings {
        kv_enabled: row.get(0)?,
        kv_max_bytes: row.get(1)?,
        http_allow,
        http_timeout_ms: row.get(3)?,
        http_max_response_bytes: row.get(4)?,
        max_memory_bytes: row.get(5)?,
        event_deadline_ms: row.get(6)?,
    })
}

fn load_settings(conn: &Connection, app_id: &str) -> Result<AppSettings, StoreError> {
    Ok(conn
        .query_row(
            "SELECT kv_enabled, kv_max_bytes, http_allow, http_timeout_ms,
                    http_max_response_bytes, max_memory_bytes, event_deadline_ms
             FROM app_settings WHERE app_id = ?1",
            [app_id],
            settings_from_row,
        )
        .optional()?
        .unwrap_or_default())
}

fn config_from_row(row: &Row<'_>) -> rusqlite::Result<ConfigValue> {
    let version: u32 = row.get(1)?;
    Ok(ConfigValue {
        name: row.get(0)?,
        version: (version != 0).then_some(version),
        value: row.get(2)?,
        secret: row.get(3)?,
    })
}

impl Store {
    /// An app's settings, defaults when none were set. Unscoped: the server reads it when
    /// it loads an app, by app id alone.
    pub fn app_settings(&self, app_id: &str) -> Result<AppSettings, StoreError> {
        if !is_id(APP_PREFIX, app_id) {
            return Ok(AppSettings::default());
        }
        load_settings(&self.conn(), app_id)
    }

    /// Changes the given settings of `account`'s app and returns them all; `Invalid`
    /// names the first field out of range and changes nothing.
    pub fn update_app_settings(
        &self,
        account: &str,
        app_id: &str,
        patch: AppSettingsPatch,
    ) -> Result<AppSettings, StoreError> {
        let conn = self.conn();
        crate::apps::require_app(&conn, account, app_id)?;
        let mut settings = load_settings(&conn, app_id)?;
        let AppSettingsPatch {
            kv_enabled,
            kv_max_bytes,
            http_allow,
            http_timeout_ms,
            http_max_response_bytes,
            max_memory_bytes,
            event_deadline_ms,
        } = patch;
        if let Some(v) = kv_enabled {
            settings.kv_enabled = v;
        }
        if let Some(v) = kv_max_bytes {
            settings.kv_max_bytes = v;
        }
        if let Some(v) = http_allow {
            settings.http_allow = v;
        }
        if let Some(v) = http_timeout_ms {
            settings.http_timeout_ms = v;
        }
        if let Some(v) = http_max_response_bytes {
            settings.http_max_response_bytes = v;
        }
        if let Some(v) = max_memory_bytes {
            settings.max_memory_bytes = v;
        }
        if let Some(v) = event_deadline_ms {
            settings.event_deadline_ms = v;
        }
        settings.validate()?;
        let allow = serde_json::to_string(&settings.http_allow)
            .map_err(|e| StoreError::invalid("http_allow", e.to_string()))?;
        conn.execute(
            "INSERT INTO app_settings (app_id, kv_enabled, kv_max_bytes, http_allow,
                 http_timeout_ms, http_max_response_bytes, max_memory_bytes, event_deadline_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (app_id) DO UPDATE SET
                kv_enabled = excluded.kv_enabled, kv_max_bytes = excluded.kv_max_bytes,
                http_allow = excluded.http_allow, http_timeout_ms = excluded.http_timeout_ms,
                http_max_response_bytes = excluded.http_max_response_bytes,
                max_memory_bytes = excluded.max_memory_bytes,
                event_deadline_ms = excluded.event_deadline_ms",
            params![
                app_id,
                settings.kv_enabled,
                settings.kv_max_bytes,
                allow,
                settings.http_timeout_ms,
                settings.http_max_response_bytes,
                settings.max_memory_bytes,
                settings.event_deadline_ms,
            ],
        )?;
        tracing::info!(app_id, "app settings changed");
        Ok(settings)
    }

    /// Every configuration value of `account`'s app, app-wide ones first, by name, with
    /// secret values included (the API hides them).
    pub fn app_config(&self, account: &str, app_id: &str) -> Result<Vec<ConfigValue>, StoreError> {
        let conn = self.conn();
        crate::apps::require_app(&conn, account, app_id)?;
        let mut stmt = conn.prepare(
            "SELECT name, version, value, secret FROM app_config WHERE app_id = ?1
             ORDER BY version, name",
        )?;
        let values = stmt
            .query_map([app_id], config_from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(values)
    }

    /// Sets one configuration value of `account`'s app, for every version (`None`) or
    /// one stored version; `NotFound` for an unknown app or version.
    pub fn set_app_config(
        &self,
        account: &str,
        app_id: &str,
        version: Option<u32>,
        name: &str,
        value: &str,
        secret: bool,
    ) -> Result<ConfigValue, StoreError> {
        validate_config_name(name)?;
        if value.len() > MAX_CONFIG_VALUE_BYTES {
            return Err(StoreError::invalid(
                "value",
                format!("must be at most {MAX_CONFIG_VALUE_BYTES} bytes"),
            ));
        }
        if version == Some(0) {
            return Err(StoreError::invalid("version", "versions count from 1"));
        }
        let conn = self.conn();
        crate::apps::require_app(&conn, account, app_id)?;
        if let Some(v) = version {
            crate::apps::require_version(&conn, app_id, v)?;
        }
        let count: i64 = conn.query_row(
            "SELECT COUNT(*) FROM app_config WHERE app_id = ?1
               AND NOT (version = ?2 AND name = ?3)",
            params![app_id, version.unwrap_or(0), name],
            |row| row.get(0),
        )?;
        if count >= MAX_CONFIG_ENTRIES {
            return Err(StoreError::Conflict(format!(
                "app {app_id} already has {MAX_CONFIG_ENTRIES} configuration values"
            )));
        }
        conn.execute(
            "INSERT INTO app_config (app_id, version, name, value, secret)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (app_id, version, name) DO UPDATE SET
                value = excluded.value, secret = excluded.secret",
            params![app_id, version.unwrap_or(0), name, value, secret],
        )?;
        tracing::info!(app_id, ?version, name, secret, "app configuration set");
        Ok(ConfigValue {
            name: name.to_owned(),
            version,
            value: value.to_owned(),
            secret,
        })
    }

    /// Removes one configuration value (app-wide with `None`, else of that version);
    /// `NotFound` when it was not set.
    pub fn delete_app_config(
        &self,
        account: &str,
        app_id: &str,
        name: &str,
        version: Option<u32>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        crate::apps::require_app(&conn, account, app_id)?;
        let deleted = conn.execute(
            "DELETE FROM app_config WHERE app_id = ?1 AND version = ?2 AND name = ?3",
            params![app_id, version.unwrap_or(0), name],
        )?;
        if deleted == 0 {
            return Err(StoreError::NotFound(format!(
                "configuration value {name:?} of app {app_id}"
            )));
        }
        tracing::info!(app_id, ?version, name, "app configuration removed");
        Ok(())
    }

    /// The configuration `version` of an app runs with: app-wide values overridden by
    /// that version's, by name. Unscoped: the server reads it when it starts an instance.
    pub fn app_config_for(
        &self,
        app_id: &str,
        version: u32,
    ) -> Result<Vec<ConfigEntry>, StoreError> {
        let conn = self.conn();
        // Ordered so a version's row comes after the app-wide one and replaces it.
        let mut stmt = conn.prepare(
            "SELECT name, value, secret FROM app_config
             WHERE app_id = ?1 AND (version = 0 OR version = ?2)
             ORDER BY name, version",
        )?;
        let rows = stmt
            .query_map(params![app_id, version], |row| {
                Ok(ConfigEntry {
                    name: row.get(0)?,
                    value: row.get(1)?,
                    secret: row.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut merged: Vec<ConfigEntry> = Vec::with_capacity(rows.len());
        for entry in rows {
            match merged.last_mut() {
                Some(last) if last.name == entry.name => *last = entry,
                _ => merged.push(entry),
            }
        }
        Ok(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "api.example.com",
            "api.example.com:8443",
            "localhost",
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:80",
            "[::1]",
            "*.a.com",
            "*.a.com:443",
            "x-1.y",
        ] {
            assert!(HttpAllowEntry::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "API.example.com",
            "a..b",
            "-a.com",
            "a.com:0",
            "a.com:70000",
            "a.com:",
            "a.com:+80",
            "http://a.com",
            "a.com/x",
            "[::1",
            "[zz]:80",
            "::1",
            "*.",
            "a.*.com",
        ] {
            assert!(
                matches!(
                    HttpAllowEntry::parse(bad),
                    Err(StoreError::Invalid {
                        field: "http_allow",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn entries_say_what_they_allow() {
        let parsed = |entry| HttpAllowEntry::parse(entry).unwrap();
        let name = |name, wildcard| HttpAllowHost::Name { name, wildcard };
        let address = |text: &str| HttpAllowHost::Address(text.parse().unwrap());
        for (entry, host, port) in [
            ("api.example.com", name("api.example.com", false), None),
            ("*.a.com:443", name("a.com", true), Some(443)),
            ("localhost:80", name("localhost", false), Some(80)),
            ("127.0.0.1:8080", address("127.0.0.1"), Some(8080)),
            ("10.1.2.3", address("10.1.2.3"), None),
            ("[::1]", address("::1"), None),
            ("[fd00::1]:443", address("fd00::1"), Some(443)),
            // Never a literal in a URL's host: a wildcard matches names only.
            ("*.1.2.3.4", name("1.2.3.4", true), None),
        ] {
            assert_eq!(parsed(entry), HttpAllowEntry { host, port }, "{entry}");
        }
    }

    #[test]
    fn ranges() {
        let mut s = AppSettings::default();
        assert!(s.validate().is_ok());
        s.max_memory_bytes = Some(MIB - 1);
        assert!(matches!(
            s.validate(),
            Err(StoreError::Invalid {
                field: "max_memory_bytes",
                ..
            })
        ));
        s.max_memory_bytes = Some(MAX_APP_MEMORY_BYTES);
        s.event_deadline_ms = Some(9);
        assert!(matches!(
            s.validate(),
            Err(StoreError::Invalid {
                field: "event_deadline_ms",
                ..
            })
        ));
        s.event_deadline_ms = Some(MAX_APP_EVENT_DEADLINE_MS);
        s.http_timeout_ms = 30_001;
        assert!(matches!(
            s.validate(),
            Err(StoreError::Invalid {
                field: "http_timeout_ms",
                ..
            })
        ));
    }
}
