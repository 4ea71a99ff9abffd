//! Settings: built-in defaults, then a TOML file, then `CHATD__SECTION__KEY` env vars.
//!
//! Every key has a default here, so a config file may set any subset of them and a
//! missing default file is not an error. `config/default.toml` lists exactly these values.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The config file read when `--config` is not given.
pub const DEFAULT_CONFIG_FILE: &str = "config/default.toml";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub history: HistorySettings,
    pub chat: ChatSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Upper bound of every request body; larger ones get 413.
    pub max_body_bytes: usize,
    /// `Access-Control-Allow-Origin` values; `*` allows every origin.
    pub cors_origins: Vec<String>,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// fsync before acknowledging; concurrent writes share one fsync.
    Always,
    /// Acknowledge after write(); fsync every `fsync_interval_ms`.
    Interval,
    /// Leave flushing to the OS.
    Never,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageSettings {
    pub data_dir: PathBuf,
    pub fsync: FsyncMode,
    pub fsync_interval_ms: u64,
    /// A log segment is closed and a new one started past this size.
    pub segment_bytes: u64,
    /// How often changed chats are snapshotted, bounding the log replayed after a crash.
    pub checkpoint_interval_secs: u64,
    /// A checkpoint also runs once this many bytes were logged since the last one, so the log
    /// replayed after a crash stays short whatever the send rate (0: by time only).
    pub checkpoint_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct HistorySettings {
    pub default_limit: u64,
    pub max_limit: u64,
    /// The newest messages of each live chat served from memory (0: every page from the log).
    pub memory_tail: usize,
    /// Bounds the bytes (texts and subjects) of each live chat's in-memory tail.
    pub memory_tail_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    /// Only a chat's members may send to it.
    Members,
    /// Anyone may send to any chat of the namespace.
    Open,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ChatSettings {
    pub membership: Membership,
    /// A chat actor with no traffic for this long snapshots and stops.
    pub idle_timeout_secs: u64,
}

/// Debug shows the namespaces but no key or secret (see the impl below).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthSettings {
    pub allow_anonymous: bool,
    pub api_keys: Vec<ApiKey>,
    /// Namespace → HS256 secret of its user tokens. A plain map (callers build it from
    /// strings); [`AuthSettings`]'s Debug redacts its values.
    pub user_token_secrets: BTreeMap<String, String>,
    /// Lets `/health`, `/ready` and `/metrics` answer off loopback, sent as
    /// `authorization: Bearer ...`; empty: they answer loopback peers only.
    pub admin_key: Secret,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    pub key: Secret,
    pub namespaces: Vec<String>,
}

/// A credential: read from config and serialized as a plain string, but Debug prints only a
/// redaction, so settings can be logged or printed in a panic without giving it away. There is
/// no Display; [`Secret::expose`] is the one way to the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret(value.to_owned())
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

/// What Debug prints for a secret.
struct Redacted;

impl std::fmt::Debug for Redacted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        Redacted.fmt(f)
    }
}

impl std::fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Destructured so that a new field must be placed here, redacted or not, to compile.
        let AuthSettings { allow_anonymous, api_keys, user_token_secrets, admin_key } = self;
        let secrets: BTreeMap<&String, Redacted> = user_token_secrets.keys().map(|ns| (ns, Redacted)).collect();
        f.debug_struct("AuthSettings")
            .field("allow_anonymous", allow_anonymous)
            .field("api_keys", api_keys)
            .field("user_token_secrets", &secrets)
            .field("admin_key", admin_key)
            .finish()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitSettings {
    pub max_id_bytes: usize,
    pub max_text_bytes: usize,
    pub max_subject_bytes: usize,
    pub max_members: usize,
    /// Sends per second per user, for user-token requests (0 = unlimited).
    pub sends_per_second: u32,
    /// How many sends a user may make at once before the rate applies.
    pub send_burst: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `chatd=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// `text` (readable) or `json` (one object per line).
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_body_bytes: 64 * 1024,
            cors_origins: vec!["*".into()],
            workers: 0,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            fsync: FsyncMode::Always,
            fsync_interval_ms: 100,
            segment_bytes: 64 * 1024 * 1024,
            checkpoint_interval_secs: 60,
            checkpoint_bytes: 32 * 1024 * 1024,
        }
    }
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self { default_limit: 50, max_limit: 1000, memory_tail: 256, memory_tail_bytes: 262_144 }
    }
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self { membership: Membership::Members, idle_timeout_secs: 300 }
    }
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_id_bytes: 256,
            max_text_bytes: 16 * 1024,
            max_subject_bytes: 1024,
            max_members: 1000,
            sends_per_second: 10,
            send_burst: 30,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: "info".into(), format: LogFormat::Text }
    }
}

impl Settings {
    /// Loads the built-in defaults, then `path` (if it exists), then `CHATD__` env vars.
    pub fn load(path: &Path) -> Result<Settings, config::ConfigError> {
        let defaults = config::Config::try_from(&Settings::default())?;
        config::Config::builder()
            .add_source(defaults)
            .add_source(config::File::from(path).format(config::FileFormat::Toml).required(false))
            .add_source(
                config::Environment::with_prefix("CHATD")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.cors_origins"),
            )
            .build()?
            .try_deserialize()
    }

    /// True when no key or token secret is configured: every request acts for its namespace.
    pub fn anonymous(&self) -> bool {
        self.auth.api_keys.is_empty() && self.auth.user_token_secrets.is_empty()
    }

    /// Anonymous mode is only safe where nobody else can connect, unless config insists.
    pub fn check_anonymous(&self) -> Result<(), String> {
        if !self.anonymous() || self.auth.allow_anonymous {
            return Ok(());
        }
        let loopback = self.server.host == "localhost"
            || self.server.host.parse::<IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
        if loopback {
            Ok(())
        } else {
            Err(format!(
                "refusing to serve anonymously on {}: configure auth.api_keys or auth.user_token_secrets, \
                 or set auth.allow_anonymous = true",
                self.server.host
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config/default.toml` must list exactly the built-in defaults.
    #[test]
    fn the_default_file_matches_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_CONFIG_FILE);
        let from_file: Settings = config::Config::builder()
            .add_source(config::File::from(path.as_path()).format(config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .expect("config/default.toml parses"); // ok: test
        let as_json = |s: &Settings| serde_json::to_value(s).expect("settings serialize"); // ok: test
        assert_eq!(as_json(&from_file), as_json(&Settings::default()));
    }
}
