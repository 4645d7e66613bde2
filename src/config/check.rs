//! The validation toolkit every section's check shares: a [`Checker`] that
//! collects errors by key path (so one run reports them all), and the
//! readers for values every section uses (durations, addresses).

use super::ConfigError;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// Collects errors while validating one key path at a time.
pub struct Checker<'e> {
    errors: &'e mut Vec<ConfigError>,
}

impl<'e> Checker<'e> {
    pub(super) fn new(errors: &'e mut Vec<ConfigError>) -> Self {
        Checker { errors }
    }

    /// Record a problem at a key path (`rules[2].permission`).
    pub fn err(&mut self, path: &str, message: impl AsRef<str>) {
        self.errors.push(ConfigError::at(path, message.as_ref()));
    }

    /// A duration, or `default` when the key is absent or wrong (and reported).
    pub fn duration(&mut self, path: &str, value: Option<&str>, default: Duration) -> Duration {
        match value {
            None => default,
            Some(s) => parse_duration(s).unwrap_or_else(|e| {
                self.err(path, e.to_string());
                default
            }),
        }
    }

    /// A `host:port` that resolves now.
    pub fn addr(&mut self, path: &str, value: &str) -> Option<SocketAddr> {
        match value.to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(a)) => Some(a),
            _ => {
                self.err(
                    path,
                    format!("`{value}` is not a `host:port` address that resolves"),
                );
                None
            }
        }
    }
}

/// A duration that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a duration like `30s`, `5m` or `24h` ({reason})")]
pub struct InvalidDuration {
    pub value: String,
    pub reason: String,
}

/// `30s`, `5m`, `24h`, `1h 30m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(s).map_err(|e| InvalidDuration {
        value: s.to_owned(),
        reason: e.to_string(),
    })
}
