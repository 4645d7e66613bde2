//! Configuration, the first layer: YAML file (with environment overrides and
//! `*_file` secrets) → raw schema → checked keys, every error with its key
//! path and line.
//!
//! The tree is read into the schema (`raw`) collecting every unknown key and
//! wrong value (`schema`, in the user's words: `wording`); then each section
//! is checked for meaning, and checking goes on after a problem so the user
//! sees every error in one run. Errors on values from the environment name
//! their variable, and a wrong value is reported once, not again by what is
//! derived from it (`origin`). The sections nobody else owns are checked here
//! (`sections`); `settings` compiles the rest with each module's own types,
//! through the same [`Checker`]. This module imports nothing of the crate.

mod check;
mod origin;
pub mod raw;
mod schema;
pub mod sections;
mod source;
mod wording;

pub use check::{parse_duration, Checker, InvalidDuration};
pub use sections::{
    CacheSettings, PortalSettings, ServerSettings, TlsSettings, UpstreamSettings, UpstreamTarget,
};
pub use source::ENV_PREFIX;

use origin::Origins;
use serde_norway::Value;
use source::LineIndex;
use std::fmt;
use std::path::Path;

/// One problem in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Key path (`rules[2].permission`); empty for the file as a whole.
    pub path: String,
    /// The environment variable the value came from, when it did.
    pub env: Option<String>,
    /// The line in the file, when known (never for a variable's value).
    pub line: Option<usize>,
    pub message: String,
}

impl ConfigError {
    pub(crate) fn at(path: &str, message: &str) -> Self {
        ConfigError {
            path: path.to_owned(),
            env: None,
            line: None,
            message: message.to_owned(),
        }
    }

    pub(crate) fn env(var: &str, message: &str) -> Self {
        ConfigError {
            env: Some(var.to_owned()),
            ..ConfigError::at("", message)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = &self.path;
        match (&self.env, self.line) {
            (Some(var), _) if path.is_empty() => write!(f, "env {var}: {}", self.message),
            (Some(var), _) => write!(f, "env {var} ({path}): {}", self.message),
            (None, _) if path.is_empty() => match self.line {
                Some(line) => write!(f, "line {line}: {}", self.message),
                None => write!(f, "{}", self.message),
            },
            (None, Some(line)) => write!(f, "{path} (line {line}): {}", self.message),
            (None, None) => write!(f, "{path}: {}", self.message),
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
/// far (from environment overrides, secret files and the schema).
pub struct Document {
    raw: raw::RawConfig,
    problems: Problems,
}

/// Problems found while checking, located by line (or variable) at the end.
pub struct Problems {
    errors: Vec<ConfigError>,
    /// Errors from here on come from checking meaning, after the schema.
    checked_from: usize,
    lines: LineIndex,
    origins: Origins,
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
    /// the text is not YAML or its schema errors are too many to go on;
    /// the schema errors found are kept with the raw keys (wrong values left
    /// out), and meaning is checked later, through [`Problems::checker`].
    pub fn read(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Document, ConfigErrors> {
        let lines = LineIndex::build(text);
        let mut root: Value = match serde_norway::from_str(text) {
            Ok(Value::Null) => Value::Mapping(Default::default()),
            Ok(v) => v,
            Err(e) => return Err(ConfigErrors(vec![wording::yaml_error(text, &e)])),
        };
        if !root.is_mapping() {
            return Err(ConfigErrors(vec![ConfigError::at(
                "",
                "the file must be a mapping of top-level keys",
            )]));
        }
        let mut origins = Origins::default();
        source::normalize_rules(&mut root);
        let mut errors = source::apply_env_overrides(&mut root, env, &mut origins);
        // A whole list of rules may come from the environment.
        source::normalize_rules(&mut root);
        source::resolve_file_secrets(&mut root, "", &mut errors, &mut origins);
        let (raw, schema_errors) = schema::read(root, &mut origins);
        errors.extend(schema_errors);
        let problems = Problems {
            checked_from: errors.len(),
            errors,
            lines,
            origins,
        };
        match raw {
            Some(raw) => Ok(Document { raw, problems }),
            None => Err(problems.located()),
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
        let errors = self.located();
        match value {
            Some(value) if errors.0.is_empty() => Ok(value),
            _ if errors.0.is_empty() => Err(ConfigErrors(vec![ConfigError::at(
                "",
                "the configuration is incomplete",
            )])),
            _ => Err(errors),
        }
    }

    /// Every problem once, in file order, each with its line or the
    /// variable its value came from. A check's error about a value that
    /// stands in for a wrong one repeats that value's error and is left out.
    fn located(self) -> ConfigErrors {
        let Problems {
            errors,
            checked_from,
            lines,
            origins,
        } = self;
        let mut out: Vec<ConfigError> = Vec::new();
        for (i, mut e) in errors.into_iter().enumerate() {
            if i >= checked_from && origins.repeats_stand_in(&e.path) {
                continue;
            }
            if e.env.is_none() {
                e.env = origins.env_var(&e.path).map(str::to_owned);
            }
            if e.env.is_none() && e.line.is_none() && !e.path.is_empty() {
                let in_long_form = e
                    .path
                    .strip_prefix("rules[")
                    .map(|rest| format!("rules.rules[{rest}"));
                let file_key = origins.file_key(&e.path);
                let spellings = [Some(&e.path), in_long_form.as_ref(), file_key.as_ref()];
                e.line = lines.line_of_any(spellings.into_iter().flatten().map(String::as_str));
            }
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
        ConfigErrors(out)
    }
}
