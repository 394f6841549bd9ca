//! Where the CLI finds the admin API, its key and the account the admin token acts on: the
//! flag, else the environment (`PBX_URL`, `PBX_API_KEY`, `PBX_ACCOUNT`), else the config file (`$PBX_CONFIG`, else
//! `$XDG_CONFIG_HOME/pbx/cli.toml` or `~/.config/pbx/cli.toml`), else the default URL.
//!
//! Invariants: resolution is a pure function of the flags, an environment lookup and the file
//! (tests inject both); an explicitly named file (`$PBX_CONFIG`) must exist, the default one
//! may be missing; empty values count as unset. The file may also be a `pbx serve` config:
//! its `http` and `admin_token` stand in for `url` and `key`, other keys are ignored.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;

use super::CliError;

/// The admin API's address when nothing else names one.
pub(crate) const DEFAULT_URL: &str = "http://127.0.0.1:8080";

/// Connection flags shared by every command that talks to the admin API.
#[derive(Debug, Args, Clone, Default)]
pub struct ConnArgs {
    /// Admin API base URL [env: PBX_URL] [default: http://127.0.0.1:8080].
    #[arg(long)]
    pub url: Option<String>,
    /// An account API key or the admin token [env: PBX_API_KEY].
    #[arg(long)]
    pub key: Option<String>,
    /// With the admin token: the account to act on (sent as `Pbx-Account`) [env:
    /// PBX_ACCOUNT] [default: the default account].
    #[arg(long)]
    pub account: Option<String>,
}

/// The CLI config file: `url = "..."`, `key = "..."`, `account = "..."`; a server config's `http` and
/// `admin_token` are understood too, so one file can serve both.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct FileConfig {
    /// Admin API base URL.
    pub url: Option<String>,
    /// API key or admin token.
    pub key: Option<String>,
    /// The account the admin token acts on.
    pub account: Option<String>,
    /// A `pbx serve` config's HTTP listen address.
    pub http: Option<SocketAddr>,
    /// A `pbx serve` config's admin token.
    pub admin_token: Option<String>,
}

impl FileConfig {
    /// Parses a config file's text; `path` only names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, CliError> {
        toml::from_str(text)
            .map_err(|err| CliError::Config(format!("config file {}: {err}", path.display())))
    }

    /// Reads `path`; a missing file is `None` unless `required`.
    pub fn load(path: &Path, required: bool) -> Result<Option<Self>, CliError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, path).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
            Err(err) => Err(CliError::Config(format!(
                "cannot read config file {}: {err}",
                path.display()
            ))),
        }
    }
}

/// Where and how to reach the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Base URL without a trailing slash, such as `http://127.0.0.1:8080`.
    pub url: String,
    /// The bearer token, when one was configured.
    pub key: Option<String>,
    /// The account named in `Pbx-Account`, when one was configured.
    pub account: Option<String>,
    /// The config file that was consulted (for error hints), if any.
    pub file: Option<PathBuf>,
}

impl Connection {
    /// Resolves the connection from the process's real environment and config file.
    pub fn from_env(args: &ConnArgs) -> Result<Self, CliError> {
        let env = |name: &str| std::env::var(name).ok();
        let (path, required) = config_path(&env);
        let file = match &path {
            Some(path) => FileConfig::load(path, required)?,
            None => None,
        };
        Ok(Self::resolve(args, &env, file, path))
    }

    /// Flag, then environment, then file, then default; `file_path` is kept for hints.
    pub fn resolve(
        args: &ConnArgs,
        env: &dyn Fn(&str) -> Option<String>,
        file: Option<FileConfig>,
        file_path: Option<PathBuf>,
    ) -> Self {
        let file = file.unwrap_or_default();
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        let url = set(args.url.clone())
            .or_else(|| set(env("PBX_URL")))
            .or_else(|| set(file.url.clone()))
            .or_else(|| {
                file.http
                    .map(|addr| format!("http://{}", connectable(addr)))
            })
            .unwrap_or_else(|| DEFAULT_URL.to_string());
        let key = set(args.key.clone())
            .or_else(|| set(env("PBX_API_KEY")))
            .or_else(|| set(file.key.clone()))
            .or_else(|| set(file.admin_token.clone()));
        let account = set(args.account.clone())
            .or_else(|| set(env("PBX_ACCOUNT")))
            .or_else(|| set(file.account.clone()));
        Connection {
            url: url.trim().trim_end_matches('/').to_string(),
            key,
            account,
            file: file_path,
        }
    }

    /// The key, or an error saying every place it could have come from.
    pub fn require_key(&self) -> Result<&str, CliError> {
        self.key.as_deref().ok_or_else(|| {
            let file = self
                .file
                .as_ref()
                .map_or_else(|| "a config file".to_string(), |p| p.display().to_string());
            CliError::Config(format!(
                "no API key: pass --key, set PBX_API_KEY, or put key = \"...\" in {file}"
            ))
        })
    }
}

/// The config file to read, and whether it must exist (it was named explicitly).
pub(crate) fn config_path(env: &dyn Fn(&str) -> Option<String>) -> (Option<PathBuf>, bool) {
    if let Some(path) = env("PBX_CONFIG").filter(|p| !p.is_empty()) {
        return (Some(PathBuf::from(path)), true);
    }
    let base = env("XDG_CONFIG_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|p| !p.is_empty())
                .map(|home| Path::new(&home).join(".config"))
        });
    (base.map(|dir| dir.join("pbx").join("cli.toml")), false)
}

/// A listen address turned into one a client can connect to (wildcards become loopback).
fn connectable(addr: SocketAddr) -> SocketAddr {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        let loopback: std::net::IpAddr = if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        };
        addr.set_ip(loopback);
    }
    addr
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests may unwrap")]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn file() -> FileConfig {
        FileConfig::parse(
            "url = \"http://file:1\"\nkey = \"file-key\"\naccount = \"acc_file\"\n",
            Path::new("cli.toml"),
        )
        .unwrap()
    }

    #[test]
    fn flag_wins_over_env_and_file() {
        let args = ConnArgs {
            url: Some("http://flag:1/".into()),
            key: Some("flag-key".into()),
            account: Some("acc_flag".into()),
        };
        let env = env_of(&[
            ("PBX_URL", "http://env:1"),
            ("PBX_API_KEY", "env-key"),
            ("PBX_ACCOUNT", "acc_env"),
        ]);
        let conn = Connection::resolve(&args, &env, Some(file()), None);
        assert_eq!(conn.url, "http://flag:1");
        assert_eq!(conn.key.as_deref(), Some("flag-key"));
        assert_eq!(conn.account.as_deref(), Some("acc_flag"));
    }

    #[test]
    fn env_wins_over_file() {
        let env = env_of(&[
            ("PBX_URL", "http://env:1"),
            ("PBX_API_KEY", "env-key"),
            ("PBX_ACCOUNT", "acc_env"),
        ]);
        let conn = Connection::resolve(&ConnArgs::default(), &env, Some(file()), None);
        assert_eq!(conn.url, "http://env:1");
        assert_eq!(conn.key.as_deref(), Some("env-key"));
        assert_eq!(conn.account.as_deref(), Some("acc_env"));
    }

    #[test]
    fn file_wins_over_default_and_empty_env_is_unset() {
        let env = env_of(&[("PBX_URL", ""), ("PBX_API_KEY", " ")]);
        let conn = Connection::resolve(&ConnArgs::default(), &env, Some(file()), None);
        assert_eq!(conn.url, "http://file:1");
        assert_eq!(conn.key.as_deref(), Some("file-key"));
        assert_eq!(conn.account.as_deref(), Some("acc_file"));
    }

    #[test]
    fn defaults_without_anything() {
        let conn = Connection::resolve(&ConnArgs::default(), &env_of(&[]), None, None);
        assert_eq!(conn.url, DEFAULT_URL);
        assert_eq!(conn.key, None);
        assert_eq!(conn.account, None);
        let err = conn.require_key().unwrap_err().to_string();
        assert!(err.contains("PBX_API_KEY"), "{err}");
    }

    #[test]
    fn server_config_stands_in() {
        let file = FileConfig::parse(
            "http = \"0.0.0.0:9090\"\nadmin_token = \"tok\"\nsip = \"0.0.0.0:5060\"\n",
            Path::new("pbx.toml"),
        )
        .unwrap();
        let conn = Connection::resolve(&ConnArgs::default(), &env_of(&[]), Some(file), None);
        assert_eq!(conn.url, "http://127.0.0.1:9090");
        assert_eq!(conn.key.as_deref(), Some("tok"));
    }

    #[test]
    fn malformed_file_is_an_error() {
        let err = FileConfig::parse("url = 3", Path::new("x.toml")).unwrap_err();
        assert!(err.to_string().contains("x.toml"), "{err}");
    }

    #[test]
    fn config_path_order() {
        let (p, required) = config_path(&env_of(&[("PBX_CONFIG", "/a.toml"), ("HOME", "/h")]));
        assert_eq!((p.unwrap(), required), (PathBuf::from("/a.toml"), true));
        let (p, required) = config_path(&env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]));
        assert_eq!(
            (p.unwrap(), required),
            (PathBuf::from("/x/pbx/cli.toml"), false)
        );
        let (p, _) = config_path(&env_of(&[("HOME", "/h")]));
        assert_eq!(p.unwrap(), PathBuf::from("/h/.config/pbx/cli.toml"));
        let missing = FileConfig::load(Path::new("/nonexistent/pbx/cli.toml"), false).unwrap();
        assert_eq!(missing, None);
        assert!(FileConfig::load(Path::new("/nonexistent/pbx/cli.toml"), true).is_err());
    }
}
