//! Configuration: one TOML file, every key overridable from the environment.
//!
//! The file is deserialized straight from its text so that a mistake is reported with the line
//! and key it sits at; environment overrides are applied afterwards and a bad one is reported by
//! the variable's name. Secrets can live in the environment alone, so none has to be written to
//! the file.

use crate::hub::HubSettings;
use crate::model::{ExtensionId, Limits, QueueId, QueueSettings, Thresholds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of every environment override: `CALLBOARD_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "CALLBOARD_";

/// Environment variables that belong to the command line, not to the file's sections.
const CLI_VARIABLES: &[&str] = &["CALLBOARD_CONFIG", "CALLBOARD_LOG_JSON"];

/// The listen address cargo-leptos sets; `server.addr` defaults to it.
const SITE_ADDR_VARIABLE: &str = "LEPTOS_SITE_ADDR";

/// The smallest `server.body_limit_bytes` accepted: below it not even a command fits.
const MIN_BODY_LIMIT: usize = 1024;
/// The largest `server.body_limit_bytes` accepted, so no client can make the server buffer
/// a body without a sane bound.
const MAX_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// The whole configuration; with no `[[provider]]` Callboard runs its demo call center. Its
/// `Debug` shows no provider's values (see [`ProviderConfig`]), so it is safe to log.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default, rename = "provider")]
    pub providers: Vec<ProviderConfig>,
    /// The demo call center, used when no provider is configured.
    #[serde(default)]
    pub demo: DemoConfig,
    #[serde(default)]
    pub desk: DeskConfig,
    #[serde(default)]
    pub queues: QueuesConfig,
}

/// `[queues]`: what every queue's figures are measured against, and when their day starts.
/// A queue can set its own targets in `[queues.by_id."<queue id>"]`; the day is the call
/// center's, one reset for all queues.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueuesConfig {
    /// A call answered within this many seconds counts toward the service level.
    pub service_level_s: u32,
    /// An abandon within this many seconds is a short one, counted apart.
    pub short_abandon_s: u32,
    /// When the day's figures start, local `HH:MM` in `time_zone`.
    pub reset_time: String,
    /// An IANA time zone name (`Australia/Sydney`); also the clock of the hourly chart.
    pub time_zone: String,
    /// Amber and red limits for waiting, longest wait and service level.
    pub thresholds: Thresholds,
    /// Targets of single queues, by queue id (`<provider>/<account>/<queue>`, as the queues
    /// screen's `data-queue` shows it).
    pub by_id: BTreeMap<String, QueueTargets>,
}

impl Default for QueuesConfig {
    fn default() -> Self {
        let defaults = QueueSettings::default();
        Self {
            service_level_s: defaults.service_level_s,
            short_abandon_s: defaults.short_abandon_s,
            reset_time: defaults.reset_time,
            time_zone: defaults.time_zone,
            thresholds: defaults.thresholds,
            by_id: BTreeMap::new(),
        }
    }
}

/// One queue's own targets; what it leaves out comes from `[queues]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueTargets {
    /// This queue's service-level threshold, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level_s: Option<u32>,
    /// This queue's short-abandon threshold, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub short_abandon_s: Option<u32>,
    /// Amber and red for the callers waiting now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Limits>,
    /// Amber and red for the longest wait now, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub longest_wait_s: Option<Limits>,
    /// Amber and red for the service level, percent (lower is worse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_level_pct: Option<Limits>,
    /// Who serves this queue, as extension numbers of the queue's provider and account
    /// (`"201"`): no provider but the simulator lists a queue's members, and without them its
    /// agent counts cannot be told. A provider's own list, where it gives one, wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
}

impl QueuesConfig {
    /// The settings the hub counts each queue's figures with.
    pub fn hub_settings(&self) -> HubSettings {
        let default_queue = QueueSettings {
            service_level_s: self.service_level_s,
            short_abandon_s: self.short_abandon_s,
            reset_time: self.reset_time.clone(),
            time_zone: self.time_zone.clone(),
            thresholds: self.thresholds.clone(),
        };
        let queues = self
            .by_id
            .iter()
            .map(|(id, targets)| {
                let mut settings = default_queue.clone();
                settings.service_level_s = targets.service_level_s.unwrap_or(settings.service_level_s);
                settings.short_abandon_s = targets.short_abandon_s.unwrap_or(settings.short_abandon_s);
                let limits = &mut settings.thresholds;
                limits.waiting = targets.waiting.unwrap_or(limits.waiting);
                limits.longest_wait_s = targets.longest_wait_s.unwrap_or(limits.longest_wait_s);
                limits.service_level_pct = targets.service_level_pct.unwrap_or(limits.service_level_pct);
                (QueueId(id.clone()), settings)
            })
            .collect();
        let members = self
            .by_id
            .iter()
            .filter(|(_, targets)| !targets.members.is_empty())
            .map(|(id, targets)| {
                let queue = QueueId(id.clone());
                let members = targets
                    .members
                    .iter()
                    .map(|number| ExtensionId::new(queue.provider(), queue.account(), number))
                    .collect();
                (queue, members)
            })
            .collect();
        HubSettings { default_queue, queues, members }
    }

    /// A reset time that is no time of day, or a zone no time zone database knows, is refused
    /// at start rather than silently counted in UTC.
    fn check(&self) -> Result<(), String> {
        let valid_time = self.reset_time.split_once(':').is_some_and(|(hour, minute)| {
            let two_digits = |part: &str| part.len() == 2 && part.chars().all(|c| c.is_ascii_digit());
            two_digits(hour)
                && two_digits(minute)
                && hour.parse::<u8>().is_ok_and(|hour| hour < 24)
                && minute.parse::<u8>().is_ok_and(|minute| minute < 60)
        });
        if !valid_time {
            return Err(format!("[queues] reset_time {:?} must be a time of day, HH:MM", self.reset_time));
        }
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return Err(format!(
                "[queues] time_zone {:?} is not a time zone this machine knows (an IANA name like Australia/Sydney)",
                self.time_zone
            ));
        }
        // TOML can write `nan` and `inf`; a threshold like that colours every card or none.
        let finite = |table: &str, key: &str, limits: &Limits| {
            for (end, value) in [("amber", limits.amber), ("red", limits.red)] {
                if !value.is_finite() {
                    return Err(format!("{table} {key}.{end} is {value}; thresholds must be finite numbers"));
                }
            }
            Ok(())
        };
        let all = &self.thresholds;
        finite("[queues]", "thresholds.waiting", &all.waiting)?;
        finite("[queues]", "thresholds.longest_wait_s", &all.longest_wait_s)?;
        finite("[queues]", "thresholds.service_level_pct", &all.service_level_pct)?;
        for (id, targets) in &self.by_id {
            let table = format!("[queues.by_id.{id:?}]");
            for (key, limits) in [
                ("waiting", &targets.waiting),
                ("longest_wait_s", &targets.longest_wait_s),
                ("service_level_pct", &targets.service_level_pct),
            ] {
                if let Some(limits) = limits {
                    finite(&table, key, limits)?;
                }
            }
            // Members are named within the queue's provider and account, so the id must say them.
            let parts: Vec<&str> = id.splitn(3, '/').collect();
            if !targets.members.is_empty() && (parts.len() != 3 || parts.iter().any(|part| part.is_empty())) {
                return Err(format!(
                    "{table} members need the queue's whole id, <provider>/<account>/<queue>, as data-queue shows it"
                ));
            }
        }
        Ok(())
    }
}

/// `[desk]`: the agent desk's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeskConfig {
    /// A CRM link for the screen pop; `{number}`, `{name}` and `{call_id}` are filled in
    /// (URL-encoded). Empty: no link.
    pub crm_url: String,
}

/// `[demo]`: how the simulated call center of demo mode runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoConfig {
    /// Seeds the simulation: the same seed gives the same day.
    pub seed: u64,
    /// Simulated seconds per real second (1 is real time).
    pub time_scale: f64,
    /// Minutes of activity simulated at start-up so the first look shows a day under way
    /// (skipped when today's journal already holds a demo run).
    pub warmup_minutes: u32,
    /// A scenario TOML file; empty means the built-in demo (40 agents, 4 queues).
    pub scenario: String,
    /// How the demo reaches the hub: `direct` (in-process); provider faces join as they land.
    pub face: String,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self { seed: 1, time_scale: 1.0, warmup_minutes: 20, scenario: String::new(), face: "direct".into() }
    }
}

/// The HTTP listener and its protections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Where to listen; defaults to `LEPTOS_SITE_ADDR` (set by cargo-leptos), else 127.0.0.1:3000.
    #[serde(default = "default_addr")]
    pub addr: SocketAddr,
    /// Largest request body accepted, so no client can make the server buffer without bound.
    #[serde(default = "default_body_limit")]
    pub body_limit_bytes: usize,
    /// Host names (no port) browsers may reach Callboard by, beyond `localhost`, IP addresses
    /// and the providers' `public_url` hosts: a page under any other name is turned away, so a
    /// hostile name rebound to this address cannot read the board.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { addr: default_addr(), body_limit_bytes: default_body_limit(), allowed_hosts: Vec::new() }
    }
}

fn default_addr() -> SocketAddr {
    // An unreadable value is refused by `Config::load_with_env` before this could use it.
    std::env::var(SITE_ADDR_VARIABLE)
        .ok()
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 3000)))
}

fn default_body_limit() -> usize {
    256 * 1024
}

/// Where the SQLite journal, history and contacts live.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_store_path")]
    pub path: PathBuf,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self { path: default_store_path() }
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("callboard.db")
}

/// The hosted PBXs Callboard can talk to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    Noojee,
    Voicenter,
    Netaxis,
    Versature,
    Voipnow,
}

/// One `[[provider]]` table. The keys beyond `kind` and `name` belong to the kind's connector,
/// which validates them, so they are kept as a table here.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Unique; namespaces every id the provider produces.
    pub name: String,
    #[serde(flatten)]
    pub settings: toml::Table,
}

/// The kind, the name and the keys given, never their values: settings hold API keys, tokens
/// and passwords, and a `{:?}` of the configuration must be safe to log.
impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("keys", &self.settings.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ProviderConfig {
    /// The infix of this provider's environment variables: upper-cased, dashes as underscores.
    pub fn env_name(&self) -> String {
        self.name.to_uppercase().replace('-', "_")
    }
}

/// Why the configuration could not be loaded; every variant names where the mistake is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: line {line}, column {column}{key}: {message}")]
    Parse { path: PathBuf, line: usize, column: usize, key: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: String, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Loads the file (if any) and applies the process environment on top.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with_env(path, std::env::vars())
    }

    /// Like [`Config::load`] with an explicit environment, so tests need not touch the process's.
    pub fn load_with_env(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        // Read here rather than where it is used, so a mistake is said, not replaced by
        // 127.0.0.1:3000 in silence.
        if let Some((var, value)) = env.iter().find(|(var, _)| var == SITE_ADDR_VARIABLE) {
            if value.trim().parse::<SocketAddr>().is_err() {
                return Err(ConfigError::Env {
                    var: var.clone(),
                    message: format!("{value:?} is not a socket address such as 127.0.0.1:3000"),
                });
            }
        }
        let (config, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
                (Self::parse(&text, path)?, path.to_owned())
            }
            None => (Self::default(), PathBuf::from("(defaults)")),
        };
        let config = config.with_env(env)?;
        config.validate(&origin)?;
        Ok(config)
    }

    /// Parses a file's text; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|error| {
            let offset = error.span().map(|span| span.start).unwrap_or(0);
            let (line, column) = line_and_column(text, offset);
            let key = key_at(text, line).map(|key| format!(", key `{key}`")).unwrap_or_default();
            ConfigError::Parse { path: path.to_owned(), line, column, key, message: error.message().trim().to_owned() }
        })
    }

    /// Applies `CALLBOARD_<SECTION>_<KEY>` and `CALLBOARD_PROVIDER_<NAME>_<KEY>` overrides.
    fn with_env(self, env: impl IntoIterator<Item = (String, String)>) -> Result<Self, ConfigError> {
        let mut table = toml::Table::try_from(&self)
            .map_err(|error| ConfigError::Env { var: "(all)".into(), message: error.to_string() })?;
        let provider_names: Vec<String> = self.providers.iter().map(ProviderConfig::env_name).collect();
        // The keys each provider's kind reads, typed, for overrides of keys its table leaves out.
        let provider_keys: Vec<toml::Table> =
            self.providers.iter().map(|provider| crate::connectors::setting_types(provider.kind)).collect();
        let mut overridden = Vec::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            if CLI_VARIABLES.contains(&var.as_str()) {
                continue;
            }
            if let Some(rest) = rest.strip_prefix("PROVIDER_") {
                // The longest name that fits: with `main` and `main-pbx`, MAIN_PBX_API_KEY is
                // main-pbx's api_key, not main's pbx_api_key.
                let found = provider_names
                    .iter()
                    .enumerate()
                    .filter_map(|(index, name)| {
                        rest.strip_prefix(name.as_str())
                            .and_then(|key| key.strip_prefix('_'))
                            .map(|key| (index, name.len(), key.to_lowercase()))
                    })
                    .max_by_key(|(_, length, _)| *length)
                    .map(|(index, _, key)| (index, key));
                let Some((index, key)) = found else {
                    return Err(ConfigError::Env {
                        var,
                        message: format!("no [[provider]] is named like this (names: {provider_names:?})"),
                    });
                };
                if key == "kind" || key == "name" {
                    return Err(ConfigError::Env {
                        var,
                        message: "a provider's kind and name come from the file".into(),
                    });
                }
                let providers = table.get_mut("provider").and_then(toml::Value::as_array_mut);
                if let Some(toml::Value::Table(provider)) = providers.and_then(|list| list.get_mut(index)) {
                    // Typed as the connector reads the key, else as the file wrote it; a key
                    // neither knows stays text (the connector names it if it is a mistake).
                    let known = provider_keys.get(index).and_then(|keys| keys.get(&key)).or_else(|| provider.get(&key));
                    let typed = match known {
                        Some(existing) => typed_like(Some(existing), &value)
                            .map_err(|message| ConfigError::Env { var: var.clone(), message })?,
                        None => toml::Value::String(value),
                    };
                    provider.insert(key, typed);
                }
            } else {
                let Some((section, key)) = rest.split_once('_') else { continue };
                let section = section.to_lowercase();
                let key = key.to_lowercase();
                let Some(toml::Value::Table(section_table)) = table.get_mut(&section) else {
                    return Err(ConfigError::Env { var, message: format!("there is no [{section}] section") });
                };
                let typed = typed_like(section_table.get(&key), &value)
                    .map_err(|message| ConfigError::Env { var: var.clone(), message })?;
                section_table.insert(key, typed);
            }
            overridden.push(var);
        }
        if overridden.is_empty() {
            return Ok(self);
        }
        Config::deserialize(table)
            .map_err(|error| ConfigError::Env { var: overridden.join(", "), message: error.message().to_owned() })
    }

    fn validate(&self, origin: &Path) -> Result<(), ConfigError> {
        self.queues.check().map_err(|message| ConfigError::Invalid { path: origin.to_owned(), message })?;
        let limit = self.server.body_limit_bytes;
        if !(MIN_BODY_LIMIT..=MAX_BODY_LIMIT).contains(&limit) {
            return Err(ConfigError::Invalid {
                path: origin.to_owned(),
                message: format!(
                    "server.body_limit_bytes {limit} must be between {MIN_BODY_LIMIT} (1 KiB) and {MAX_BODY_LIMIT} (64 MiB)"
                ),
            });
        }
        // A name with a scheme or a port would never match a Host header's name, silently.
        for name in &self.server.allowed_hosts {
            let bare = name == "*"
                || name.parse::<std::net::IpAddr>().is_ok()
                || (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
            if !bare {
                return Err(ConfigError::Invalid {
                    path: origin.to_owned(),
                    message: format!(
                        "server.allowed_hosts {name:?} must be a bare host name or address, like \"board.example.com\" (no scheme, no port)"
                    ),
                });
            }
        }
        let mut seen = std::collections::HashSet::new();
        for provider in &self.providers {
            let valid = !provider.name.is_empty()
                && provider.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid {
                return Err(ConfigError::Invalid {
                    path: origin.to_owned(),
                    message: format!(
                        "provider name {:?} must be non-empty letters, digits, '-' or '_' (it is part of URLs and ids)",
                        provider.name
                    ),
                });
            }
            if !seen.insert(provider.env_name()) {
                return Err(ConfigError::Invalid {
                    path: origin.to_owned(),
                    message: format!("two providers are named {:?}; names must be unique", provider.name),
                });
            }
        }
        Ok(())
    }

    /// True when no provider is configured and the demo call center should run.
    pub fn is_demo(&self) -> bool {
        self.providers.is_empty()
    }
}

/// Converts an environment string to the type the key already has (numbers stay numbers; a
/// list is read from comma-separated text, `a, b`, each item text, empty for none).
fn typed_like(existing: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    match existing {
        Some(toml::Value::Array(_)) => Ok(toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_owned()))
                .collect(),
        )),
        Some(toml::Value::Integer(_)) => value
            .trim()
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|_| format!("expected a whole number, got {value:?}")),
        Some(toml::Value::Boolean(_)) => match value.trim() {
            "true" | "1" | "yes" => Ok(toml::Value::Boolean(true)),
            "false" | "0" | "no" => Ok(toml::Value::Boolean(false)),
            _ => Err(format!("expected true or false, got {value:?}")),
        },
        Some(toml::Value::Float(_)) => {
            value.trim().parse::<f64>().map(toml::Value::Float).map_err(|_| format!("expected a number, got {value:?}"))
        }
        Some(_) => Ok(toml::Value::String(value.to_owned())),
        None => Err("no such key in this section".into()),
    }
}

/// 1-based line and column of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |tail| tail.chars().count()) + 1;
    (line, column)
}

/// The dotted key written on a 1-based line, qualified by the table header above it.
fn key_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let current = lines.get(line.checked_sub(1)?)?.trim();
    let header = lines[..line - 1].iter().rev().find_map(|candidate| {
        let candidate = candidate.trim();
        candidate.starts_with('[').then(|| candidate.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    });
    if current.starts_with('[') {
        return Some(current.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
    }
    let key = current.split('=').next()?.trim();
    if key.is_empty() || key.starts_with('#') {
        return header;
    }
    Some(match header {
        Some(header) => format!("{header}.{key}"),
        None => key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("test.toml"))
    }

    #[test]
    fn empty_file_is_demo_mode_with_defaults() {
        let config = parse("").unwrap();
        assert!(config.is_demo());
        assert_eq!(config.store.path, PathBuf::from("callboard.db"));
    }

    #[test]
    fn full_file_parses() {
        let config = parse(
            r#"
[server]
addr = "127.0.0.1:4000"
[store]
path = "x.db"
[[provider]]
kind = "noojee"
name = "main-pbx"
base_url = "https://pbx.example/servicemanager/rest"
extensions = ["100", "101"]
"#,
        )
        .unwrap();
        assert_eq!(config.server.addr, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(config.providers.len(), 1);
        assert_eq!(config.providers[0].kind, ProviderKind::Noojee);
        assert_eq!(config.providers[0].settings["extensions"].as_array().unwrap().len(), 2);
        assert!(!config.is_demo());
    }

    #[test]
    fn bad_value_names_line_and_key() {
        let error = parse("[server]\n# listener\naddr = 5\n").unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
        assert!(error.contains("server.addr"), "{error}");
        assert!(error.contains("test.toml"), "{error}");
    }

    #[test]
    fn unknown_key_is_refused_with_its_line() {
        let error = parse("[store]\npth = \"a.db\"\n").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("store.pth"), "{error}");
        assert!(error.contains("unknown field"), "{error}");
    }

    #[test]
    fn unknown_provider_kind_is_refused() {
        let error = parse("[[provider]]\nkind = \"asterisk\"\nname = \"a\"\n").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("asterisk"), "{error}");
    }

    #[test]
    fn syntax_error_names_line() {
        let error = parse("[server]\naddr = \"127.0.0.1:1\"\n[store\n").unwrap_err().to_string();
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn environment_overrides_sections_and_provider_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[[provider]]\nkind = \"noojee\"\nname = \"main-pbx\"\n").unwrap();
        let env = [
            ("CALLBOARD_STORE_PATH", "/tmp/other.db"),
            ("CALLBOARD_SERVER_ADDR", "127.0.0.1:3999"),
            ("CALLBOARD_SERVER_BODY_LIMIT_BYTES", "1024"),
            ("CALLBOARD_PROVIDER_MAIN_PBX_API_KEY", "s3cret"),
            ("CALLBOARD_CONFIG", "ignored"),
            ("UNRELATED", "x"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load_with_env(Some(&path), env).unwrap();
        assert_eq!(config.store.path, PathBuf::from("/tmp/other.db"));
        assert_eq!(config.server.addr.port(), 3999);
        assert_eq!(config.server.body_limit_bytes, 1024);
        assert_eq!(config.providers[0].settings["api_key"].as_str(), Some("s3cret"));
    }

    #[test]
    fn bad_environment_value_names_the_variable() {
        let env = [("CALLBOARD_SERVER_ADDR".to_owned(), "not an address".to_owned())];
        let error = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(error.contains("CALLBOARD_SERVER_ADDR"), "{error}");
        let env = [("CALLBOARD_SERVER_BODY_LIMIT_BYTES".to_owned(), "lots".to_owned())];
        let error = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(error.contains("CALLBOARD_SERVER_BODY_LIMIT_BYTES"), "{error}");
        let env = [("CALLBOARD_PROVIDER_NOPE_API_KEY".to_owned(), "x".to_owned())];
        assert!(Config::load_with_env(None, env).is_err());
    }

    #[test]
    fn missing_file_and_duplicate_names_are_clear() {
        let error = Config::load_with_env(Some(Path::new("/nonexistent/c.toml")), []).unwrap_err();
        assert!(error.to_string().contains("/nonexistent/c.toml"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[[provider]]\nkind=\"noojee\"\nname=\"a\"\n[[provider]]\nkind=\"netaxis\"\nname=\"a\"\n",
        )
        .unwrap();
        let error = Config::load_with_env(Some(&path), []).unwrap_err().to_string();
        assert!(error.contains("unique"), "{error}");
    }

    #[test]
    fn queue_targets_default_for_all_and_override_per_queue() {
        let config = parse(
            r#"
[queues]
service_level_s = 30
time_zone = "Australia/Sydney"
reset_time = "06:30"
thresholds.waiting = { amber = 5, red = 10 }
[queues.by_id."pbx/acct/vip"]
service_level_s = 10
service_level_pct = { amber = 95, red = 90 }
members = ["201", "202"]
"#,
        )
        .unwrap();
        config.validate(Path::new("c.toml")).unwrap();
        let settings = config.queues.hub_settings();
        let all = &settings.default_queue;
        assert_eq!((all.service_level_s, all.short_abandon_s), (30, 5));
        assert_eq!((all.reset_time.as_str(), all.time_zone.as_str()), ("06:30", "Australia/Sydney"));
        assert_eq!(all.thresholds.waiting, Limits { amber: 5.0, red: 10.0 });
        let vip = &settings.queues[&QueueId("pbx/acct/vip".into())];
        assert_eq!((vip.service_level_s, vip.short_abandon_s), (10, 5));
        assert_eq!(vip.thresholds.service_level_pct, Limits { amber: 95.0, red: 90.0 });
        // What the queue leaves out comes from [queues], not from the built-in defaults.
        assert_eq!(vip.thresholds.waiting, Limits { amber: 5.0, red: 10.0 });
        assert_eq!(vip.time_zone, "Australia/Sydney");
        // Its members are extensions of the queue's own provider and account.
        let members = &settings.members[&QueueId("pbx/acct/vip".into())];
        assert_eq!(members, &vec![ExtensionId("pbx/acct/201".into()), ExtensionId("pbx/acct/202".into())]);
        let error = parse("[queues.by_id.vip]\nmembers = [\"201\"]\n").unwrap().validate(Path::new("c.toml"));
        assert!(error.unwrap_err().to_string().contains("whole id"));
        // The day is the call center's: a queue cannot have its own.
        let error = parse("[queues.by_id.\"a/b/c\"]\nreset_time = \"01:00\"\n").unwrap_err().to_string();
        assert!(error.contains("line 2"), "{error}");
        // And the environment sets them like any key.
        let env = [
            ("CALLBOARD_QUEUES_TIME_ZONE".to_owned(), "Europe/London".to_owned()),
            ("CALLBOARD_QUEUES_SERVICE_LEVEL_S".to_owned(), "15".to_owned()),
        ];
        let config = Config::load_with_env(None, env).unwrap();
        assert_eq!((config.queues.time_zone.as_str(), config.queues.service_level_s), ("Europe/London", 15));
    }

    #[test]
    fn a_bad_reset_time_or_time_zone_is_refused_at_start() {
        for (var, value, words) in [
            ("CALLBOARD_QUEUES_RESET_TIME", "25:00", "reset_time"),
            ("CALLBOARD_QUEUES_RESET_TIME", "7am", "reset_time"),
            ("CALLBOARD_QUEUES_TIME_ZONE", "Mars/Olympus", "time_zone"),
        ] {
            let error = Config::load_with_env(None, [(var.to_owned(), value.to_owned())]).unwrap_err().to_string();
            assert!(error.contains(words) && error.contains(value), "{error}");
        }
    }

    #[test]
    fn provider_keys_from_the_environment_take_the_type_the_connector_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            r#"
[[provider]]
kind = "noojee"
name = "main"
base_url = "https://pbx.example/servicemanager/rest"
poll_timeout_s = 30

[[provider]]
kind = "versature"
name = "main-pbx"
public_url = "https://board.example"
"#,
        )
        .unwrap();
        let env = [
            ("CALLBOARD_PROVIDER_MAIN_POLL_TIMEOUT_S", "45"),
            ("CALLBOARD_PROVIDER_MAIN_API_KEY", "12345"),
            ("CALLBOARD_PROVIDER_MAIN_EXTENSIONS", "400, 410"),
            ("CALLBOARD_PROVIDER_MAIN_PBX_EXPIRES_IN", "3600"),
            ("CALLBOARD_PROVIDER_MAIN_PBX_DELETE_ON_SHUTDOWN", "true"),
            ("CALLBOARD_PROVIDER_MAIN_PBX_CLIENT_ID", "7"),
            ("CALLBOARD_PROVIDER_MAIN_PBX_CLIENT_SECRET", "0042"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let config = Config::load_with_env(Some(&path), env).unwrap();
        let main = &config.providers[0].settings;
        assert_eq!(main["poll_timeout_s"].as_integer(), Some(45), "in the file: a number");
        assert_eq!(main["api_key"].as_str(), Some("12345"), "not in the file: a secret stays text");
        let extensions = vec![toml::Value::String("400".into()), toml::Value::String("410".into())];
        assert_eq!(main["extensions"], toml::Value::Array(extensions), "a list");
        assert!(!main.contains_key("pbx_expires_in"), "the longest name takes it: {main:?}");
        let noojee = crate::connectors::noojee::NoojeeConfig::from_table(main).unwrap();
        assert_eq!((noojee.poll_timeout_s, noojee.api_key.as_str()), (45, "12345"));
        let pbx = &config.providers[1].settings;
        assert_eq!(pbx["expires_in"].as_integer(), Some(3600));
        assert_eq!(pbx["delete_on_shutdown"].as_bool(), Some(true));
        assert_eq!((pbx["client_id"].as_str(), pbx["client_secret"].as_str()), (Some("7"), Some("0042")));
        let versature = crate::connectors::versature::VersatureConfig::from_table(pbx).unwrap();
        assert_eq!((versature.expires_in, versature.delete_on_shutdown), (3600, true));
        // A value that is not of the key's type names the variable.
        let env = [("CALLBOARD_PROVIDER_MAIN_POLL_TIMEOUT_S".to_owned(), "soon".to_owned())];
        let error = Config::load_with_env(Some(&path), env).unwrap_err().to_string();
        assert!(error.contains("CALLBOARD_PROVIDER_MAIN_POLL_TIMEOUT_S") && error.contains("whole number"), "{error}");
    }

    #[test]
    fn debug_output_names_provider_keys_but_shows_no_values() {
        let config = parse("[[provider]]\nkind = \"noojee\"\nname = \"main-pbx\"\napi_key = \"s3cret-key\"\n").unwrap();
        let shown = format!("{config:?}");
        assert!(shown.contains("main-pbx") && shown.contains("api_key") && shown.contains("Noojee"), "{shown}");
        assert!(!shown.contains("s3cret-key"), "{shown}");
    }

    #[test]
    fn allowed_hosts_default_to_none_and_come_from_the_environment_as_a_list() {
        assert!(parse("").unwrap().server.allowed_hosts.is_empty());
        for bad in ["https://board.example.com", "board.example.com:8443", ""] {
            let config = parse(&format!("[server]\nallowed_hosts = [{bad:?}]\n")).unwrap();
            let error = config.validate(Path::new("c.toml")).unwrap_err().to_string();
            assert!(error.contains("bare host name"), "{bad}: {error}");
        }
        for good in ["board.example.com", "10.0.0.5", "::1", "*"] {
            let config = parse(&format!("[server]\nallowed_hosts = [{good:?}]\n")).unwrap();
            config.validate(Path::new("c.toml")).unwrap();
        }
        let config = parse("[server]\nallowed_hosts = [\"board.example.com\"]\n").unwrap();
        assert_eq!(config.server.allowed_hosts, vec!["board.example.com"]);
        let env = [("CALLBOARD_SERVER_ALLOWED_HOSTS".to_owned(), " board.example.com, wall.local ,".to_owned())];
        let config = Config::load_with_env(None, env).unwrap();
        assert_eq!(config.server.allowed_hosts, vec!["board.example.com", "wall.local"]);
    }

    #[test]
    fn a_body_limit_out_of_range_is_refused_naming_the_key() {
        for value in ["0", "1023", "67108865"] {
            let env = [("CALLBOARD_SERVER_BODY_LIMIT_BYTES".to_owned(), value.to_owned())];
            let error = Config::load_with_env(None, env).unwrap_err().to_string();
            assert!(error.contains("server.body_limit_bytes") && error.contains(value), "{error}");
        }
        for value in ["1024", "67108864"] {
            let env = [("CALLBOARD_SERVER_BODY_LIMIT_BYTES".to_owned(), value.to_owned())];
            Config::load_with_env(None, env).unwrap();
        }
    }

    #[test]
    fn an_unreadable_leptos_site_addr_is_an_error_naming_it() {
        let env = [("LEPTOS_SITE_ADDR".to_owned(), "localhost:3000".to_owned())];
        let error = Config::load_with_env(None, env).unwrap_err().to_string();
        assert!(error.contains("LEPTOS_SITE_ADDR") && error.contains("localhost:3000"), "{error}");
        let env = [("LEPTOS_SITE_ADDR".to_owned(), "127.0.0.1:3999".to_owned())];
        Config::load_with_env(None, env).unwrap();
    }

    #[test]
    fn thresholds_that_are_not_finite_numbers_are_refused_naming_the_key() {
        for (text, words) in [
            ("[queues]\nthresholds.waiting = { amber = nan, red = 6.0 }\n", "[queues] thresholds.waiting.amber"),
            (
                "[queues]\nthresholds.service_level_pct = { amber = 80.0, red = -inf }\n",
                "thresholds.service_level_pct.red",
            ),
            ("[queues.by_id.\"a/b/c\"]\nlongest_wait_s = { amber = 30.0, red = inf }\n", "longest_wait_s.red"),
        ] {
            let error = parse(text).unwrap().validate(Path::new("c.toml")).unwrap_err().to_string();
            assert!(error.contains(words), "{error}");
        }
        let error = parse("[queues.by_id.\"a/b/c\"]\nwaiting = { amber = nan, red = 1.0 }\n")
            .unwrap()
            .validate(Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("a/b/c") && error.contains("waiting.amber"), "{error}");
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../../callboard.example.toml");
        parse(text).unwrap();
    }
}
