//! Configuration: YAML file → raw schema → validated [`Config`].
//!
//! Loading is two-layered (see `raw` and `model`): serde rejects unknown keys
//! and wrong types, then validation checks meaning and reports *every* error
//! at once, each with its key path and, where known, its line.

mod model;
mod raw;
mod source;

pub use model::parse_duration;
pub use model::{
    CacheSettings, Config, HeaderSettings, IdentityHeader, MethodOverride, PortalSettings,
    ServerSettings, TlsSettings, UpstreamSettings, UpstreamTarget,
};
pub use source::ENV_PREFIX;

use serde_norway::Value;
use source::LineIndex;
use std::fmt;
use std::path::Path;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path (`rules[2].permission`), or `env NAME` for an override.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn at(path: &str, message: &str) -> Self {
        ConfigError {
            path: path.to_owned(),
            line: None,
            message: message.to_owned(),
        }
    }

    pub(crate) fn env(var: &str, message: &str) -> Self {
        ConfigError::at(&format!("env {var}"), message)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "(top level)"
        } else {
            &self.path
        };
        match self.line {
            Some(line) => write!(f, "{path} (line {line}): {}", self.message),
            None => write!(f, "{path}: {}", self.message),
        }
    }
}

/// Every problem found, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "error: {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// Load a file, applying the process environment's overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::at(
                "",
                &format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        Config::from_yaml(&text, std::env::vars())
    }

    /// Parse configuration text with the given environment.
    pub fn from_yaml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        let index = LineIndex::build(text);
        let locate = |mut e: ConfigError| {
            if e.line.is_none() && !e.path.starts_with("env ") {
                e.line = index.line_of(&e.path);
            }
            e
        };
        let mut root: Value = match serde_norway::from_str(text) {
            Ok(Value::Null) => Value::Mapping(Default::default()),
            Ok(v) => v,
            Err(e) => {
                let line = e.location().map(|l| l.line());
                return Err(ConfigErrors(vec![ConfigError {
                    path: String::new(),
                    line,
                    message: format!("not valid YAML: {e}"),
                }]));
            }
        };
        if !root.is_mapping() {
            return Err(ConfigErrors(vec![ConfigError::at(
                "",
                "the file must be a mapping of top-level keys",
            )]));
        }
        let mut errors = source::apply_env_overrides(&mut root, env);
        source::resolve_file_secrets(&mut root, "", &mut errors);
        let rules_shorthand = source::normalize_rules(&mut root);
        let raw: raw::RawConfig = match serde_path_to_error::deserialize(root) {
            Ok(raw) => raw,
            Err(e) => {
                let mut path = e.path().to_string();
                if path == "." {
                    path.clear();
                }
                if rules_shorthand {
                    if let Some(rest) = path.strip_prefix("rules.rules") {
                        path = format!("rules{rest}");
                    }
                }
                errors.push(ConfigError::at(&path, &e.inner().to_string()));
                return Err(ConfigErrors(errors.into_iter().map(locate).collect()));
            }
        };
        match model::validate(raw, &mut errors) {
            Some(config) if errors.is_empty() => Ok(config),
            _ => {
                let mut errors: Vec<ConfigError> = errors.into_iter().map(locate).collect();
                errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
                Err(ConfigErrors(errors))
            }
        }
    }
}
