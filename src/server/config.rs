//! Configuration: one TOML file, every key overridable from the environment.
//!
//! The file is deserialized straight from its text so that a mistake is reported with the line
//! and key it sits at; environment overrides are applied afterwards and a bad one is reported by
//! the variable's name. Secrets can live in the environment alone, so none has to be written to
//! the file.

use crate::hub::HubSettings;
use crate::model::{Limits, QueueId, QueueSettings, Thresholds};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of every environment override: `CALLBOARD_<SECTION>_<KEY>`.
const ENV_PREFIX: &str = "CALLBOARD_";

/// Environment variables that belong to the command line, not to the file's sections.
const CLI_VARIABLES: &[&str] = &["CALLBOARD_CONFIG", "CALLBOARD_LOG_JSON"];

/// The whole configuration; with no `[[provider]]` Callboard runs its demo call center.
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
        HubSettings { default_queue, queues }
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { addr: default_addr(), body_limit_bytes: default_body_limit() }
    }
}

fn default_addr() -> SocketAddr {
    std::env::var("LEPTOS_SITE_ADDR")
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    /// Unique; namespaces every id the provider produces.
    pub name: String,
    #[serde(flatten)]
    pub settings: toml::Table,
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
        let mut overridden = Vec::new();
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else { continue };
            if CLI_VARIABLES.contains(&var.as_str()) {
                continue;
            }
            if let Some(rest) = rest.strip_prefix("PROVIDER_") {
                let found = provider_names.iter().enumerate().find_map(|(index, name)| {
                    rest.strip_prefix(name.as_str())
                        .and_then(|key| key.strip_prefix('_'))
                        .map(|key| (index, key.to_lowercase()))
                });
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
                    provider.insert(key, toml::Value::String(value));
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

/// Converts an environment string to the type the key already has (numbers stay numbers).
fn typed_like(existing: Option<&toml::Value>, value: &str) -> Result<toml::Value, String> {
    match existing {
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
    fn example_file_parses() {
        let text = include_str!("../../callboard.example.toml");
        parse(text).unwrap();
    }
}
