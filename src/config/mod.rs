//! Configuration, the first layer: YAML file (with environment overrides and
//! `*_file` secrets) → raw schema → checked keys, every error with its key
//! path and line.
//!
//! serde rejects unknown keys and wrong types (`raw`); then each section is
//! checked for meaning, and checking goes on after a problem so the user sees
//! every error in one run. The sections nobody else owns are checked here
//! (`sections`); `settings` compiles the rest with each module's own types,
//! through the same [`Checker`]. This module imports nothing of the crate.

mod check;
pub mod raw;
pub mod sections;
mod source;

pub use check::{parse_duration, Checker, InvalidDuration};
pub use sections::{
    CacheSettings, PortalSettings, ServerSettings, TlsSettings, UpstreamSettings, UpstreamTarget,
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

/// A configuration file read into its raw keys, with the problems found so
/// far (from environment overrides and secret files).
pub struct Document {
    raw: raw::RawConfig,
    problems: Problems,
}

/// Problems found while checking, located by line at the end.
pub struct Problems {
    errors: Vec<ConfigError>,
    lines: LineIndex,
}

impl Document {
    /// Read a file, applying the process environment's overrides.
    pub fn load(path: &Path) -> Result<Document, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigError::at(
                "",
                &format!("cannot read {}: {e}", path.display()),
            )])
        })?;
        Document::read(&text, std::env::vars())
    }

    /// Read configuration text with the given environment. Fails only when
    /// the text is not YAML or does not fit the schema; meaning is checked
    /// later, through [`Problems::checker`].
    pub fn read(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Document, ConfigErrors> {
        let lines = LineIndex::build(text);
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
        match serde_path_to_error::deserialize(root) {
            Ok(raw) => Ok(Document {
                raw,
                problems: Problems { errors, lines },
            }),
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
                let problems = Problems { errors, lines };
                Err(problems.located(false))
            }
        }
    }

    /// The raw keys, and where to report what is wrong with them.
    pub fn into_parts(self) -> (raw::RawConfig, Problems) {
        (self.raw, self.problems)
    }
}

impl Problems {
    /// A checker that records problems here.
    pub fn checker(&mut self) -> Checker<'_> {
        Checker::new(&mut self.errors)
    }

    /// The checked value if nothing was wrong, else every problem, in file
    /// order.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, ConfigErrors> {
        match value {
            Some(value) if self.errors.is_empty() => Ok(value),
            _ => Err(self.located(true)),
        }
    }

    /// Every problem with its line; `in_file_order` sorts them by it.
    fn located(self, in_file_order: bool) -> ConfigErrors {
        let lines = self.lines;
        let mut errors: Vec<ConfigError> = self
            .errors
            .into_iter()
            .map(|mut e| {
                if e.line.is_none() && !e.path.starts_with("env ") {
                    e.line = lines.line_of(&e.path);
                }
                e
            })
            .collect();
        if in_file_order {
            errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        }
        ConfigErrors(errors)
    }
}
