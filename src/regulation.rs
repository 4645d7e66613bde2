//! Regulation: failed sign-ins counted per user name and per client IP;
//! too many within `find_time` bans the subject for `ban_time`.
//!
//! Counts and bans live in the store, so every replica agrees; each replica
//! also keeps the running bans in memory (loaded at start, learnt from the
//! change feed), so checking a ban costs no database round trip — and when
//! there are none, one atomic load. A banned subject is refused before any
//! password is looked at: its correct password is refused too, and costs no
//! argon2 work.

use crate::metrics::Metrics;
use crate::store::{unix_now, Store};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// `regulation:` after validation.
#[derive(Debug, Clone)]
pub struct RegulationSettings {
    /// 0 turns regulation off.
    pub max_retries: u32,
    pub max_retries_per_ip: u32,
    pub find_time: Duration,
    pub ban_time: Duration,
}

impl Default for RegulationSettings {
    fn default() -> Self {
        RegulationSettings {
            max_retries: 5,
            max_retries_per_ip: 100,
            find_time: Duration::from_secs(300),
            ban_time: Duration::from_secs(900),
        }
    }
}

/// A refused attempt: come back after this long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banned {
    pub retry_after: Duration,
}

/// Subject keys as stored: `user:NAME`, `ip:ADDR`.
fn user_subject(username: &str) -> String {
    // Bounded, so a huge made-up name cannot bloat the store.
    let name: String = username.chars().take(128).collect();
    format!("user:{name}")
}

fn ip_subject(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

/// Counts failures, keeps bans, answers "may this attempt go ahead?".
pub struct Regulator {
    settings: RegulationSettings,
    store: Option<Store>,
    bans: RwLock<HashMap<String, i64>>,
    any_bans: AtomicBool,
    metrics: Option<Arc<Metrics>>,
}

impl Regulator {
    pub fn new(settings: RegulationSettings, store: Option<Store>) -> Self {
        Regulator {
            settings,
            store,
            bans: RwLock::new(HashMap::new()),
            any_bans: AtomicBool::new(false),
            metrics: None,
        }
    }

    /// Count the bans made here in `metrics`.
    pub fn counting(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn settings(&self) -> &RegulationSettings {
        &self.settings
    }

    fn enabled(&self) -> bool {
        self.settings.max_retries > 0
    }

    /// Is an attempt by `username` from `ip` refused right now?
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Banned> {
        if !self.enabled() || !self.any_bans.load(Ordering::Relaxed) {
            return Ok(());
        }
        let now = unix_now();
        let Ok(bans) = self.bans.read() else {
            return Ok(());
        };
        let until = [Some(user_subject(username)), ip.map(ip_subject)]
            .into_iter()
            .flatten()
            .filter_map(|s| bans.get(&s).copied())
            .filter(|until| *until > now)
            .max();
        match until {
            Some(until) => Err(Banned {
                retry_after: Duration::from_secs((until - now).max(1) as u64),
            }),
            None => Ok(()),
        }
    }

    /// Count a failed attempt; ban whatever crossed its limit.
    pub async fn failed(&self, username: &str, ip: Option<IpAddr>) {
        let Some(store) = self.store.as_ref().filter(|_| self.enabled()) else {
            return;
        };
        let now = unix_now();
        let since = now - self.settings.find_time.as_secs() as i64;
        let subjects = [
            Some((user_subject(username), self.settings.max_retries)),
            ip.filter(|_| self.settings.max_retries_per_ip > 0)
                .map(|ip| (ip_subject(ip), self.settings.max_retries_per_ip)),
        ];
        for (i, entry) in subjects.into_iter().enumerate() {
            let Some((subject, limit)) = entry else {
                continue;
            };
            match store.record_failure(&subject, now, since).await {
                Ok(count) if count >= i64::from(limit) => {
                    if let Some(m) = &self.metrics {
                        m.ban(i == 1);
                    }
                    let until = now + self.settings.ban_time.as_secs() as i64;
                    tracing::warn!(%subject, failures = count, ban_seconds = self.settings.ban_time.as_secs(), "too many failed sign-ins; banned");
                    self.learn(&subject, until);
                    if let Err(e) = store.ban(&subject, until).await {
                        tracing::error!(error = %e, "cannot record a ban in the store");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot count a failed sign-in"),
            }
        }
    }

    /// A successful sign-in clears the user's count (not the IP's).
    pub async fn succeeded(&self, username: &str) {
        if let Some(store) = self.store.as_ref().filter(|_| self.enabled()) {
            if let Err(e) = store.clear_failures(&user_subject(username)).await {
                tracing::debug!(error = %e, "cannot clear failed sign-ins");
            }
        }
    }

    /// Remember a ban (made here, by another replica, or found at start).
    pub fn learn(&self, subject: &str, until: i64) {
        if let Ok(mut bans) = self.bans.write() {
            let now = unix_now();
            bans.retain(|_, u| *u > now);
            bans.insert(subject.to_owned(), until);
            self.any_bans.store(true, Ordering::Relaxed);
        }
    }

    /// Load running bans from the store (at start, and when the feed says so).
    pub async fn sync(&self) {
        let Some(store) = &self.store else { return };
        match store.active_bans(unix_now()).await {
            Ok(bans) => {
                for (subject, until) in bans {
                    self.learn(&subject, until);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read bans from the store"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_apply_to_the_user_and_the_address() {
        let r = Regulator::new(RegulationSettings::default(), None);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(r.check("alice", Some(ip)).is_ok());
        r.learn("user:alice", unix_now() + 60);
        let banned = r.check("alice", None).unwrap_err();
        assert!(banned.retry_after <= Duration::from_secs(60));
        assert!(r.check("bob", Some(ip)).is_ok());
        r.learn("ip:192.0.2.7", unix_now() + 600);
        assert!(r.check("bob", Some(ip)).is_err());
        assert!(r.check("bob", Some("192.0.2.8".parse().unwrap())).is_ok());
        // Ended bans no longer count.
        r.learn("user:carol", unix_now() - 1);
        assert!(r.check("carol", None).is_ok());
    }

    #[test]
    fn max_retries_zero_turns_it_off() {
        let r = Regulator::new(
            RegulationSettings {
                max_retries: 0,
                ..RegulationSettings::default()
            },
            None,
        );
        r.learn("user:alice", unix_now() + 60);
        assert!(r.check("alice", None).is_ok());
    }
}
