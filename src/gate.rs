//! The gate: request view → credential → identity → decision.
//!
//! The one function every mode calls (inline proxying now; forward-auth and
//! `explain` share the same policy), so they can never disagree.

use crate::authn::{Authenticator, AuthnError, CacheOutcome};
use crate::credentials::{self, CredentialError, CredentialSource};
use crate::identity::Identity;
use crate::metrics::{DecisionLabel, Metrics};
use crate::policy::{decide, normalize_path, Access, PathError, Policy, Target, Verdict};
use http::{HeaderMap, Method};
use std::sync::Arc;
use std::time::Instant;

/// What the gate needs to know about a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a Method,
    /// Host without port, lowercase.
    pub host: &'a str,
    /// Path as received (no query).
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// A request that may pass.
#[derive(Debug, Clone)]
pub struct Admission {
    /// `None` on a public path without a valid credential.
    pub identity: Option<Arc<Identity>>,
    /// The header whose credential was used (removed before proxying).
    pub consumed: Option<CredentialSource>,
}

/// Why a request may not pass; each maps to one answer in `respond`.
#[derive(Debug, Clone)]
pub enum Denial {
    /// The path could not be normalized safely (400).
    BadPath(PathError),
    /// Credential headers are malformed (400).
    Malformed(CredentialError),
    /// Nobody known is asking (401 / login redirect).
    Unauthenticated(Unauthenticated),
    /// Known (or not), but not permitted (403).
    Forbidden { rule: String, requirement: String },
}

/// Why nobody is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unauthenticated {
    Missing,
    Unsupported(CredentialError),
    Rejected(AuthnError),
}

pub type GateOutcome = Result<Admission, Denial>;

/// Policy plus authenticator, and the metrics they feed.
pub struct Gate {
    policy: Policy,
    authn: Authenticator,
    metrics: Arc<Metrics>,
    cookie_name: String,
}

enum AuthFailure {
    Malformed(CredentialError),
    Unauthenticated(Unauthenticated),
}

impl Gate {
    pub fn new(
        policy: Policy,
        authn: Authenticator,
        metrics: Arc<Metrics>,
        cookie_name: String,
    ) -> Self {
        Gate {
            policy,
            authn,
            metrics,
            cookie_name,
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// Decide one request, recording the decision metrics.
    pub async fn check(&self, view: &RequestView<'_>) -> GateOutcome {
        let started = Instant::now();
        let outcome = self.evaluate(view).await;
        let label = match &outcome {
            Ok(a) if a.identity.is_none() => DecisionLabel::Public,
            Ok(_) => DecisionLabel::Allow,
            Err(Denial::BadPath(_) | Denial::Malformed(_)) => DecisionLabel::BadRequest,
            Err(Denial::Unauthenticated(_)) => DecisionLabel::Unauthenticated,
            Err(Denial::Forbidden { .. }) => DecisionLabel::Forbidden,
        };
        let method = outcome
            .as_ref()
            .ok()
            .and_then(|a| a.identity.as_ref())
            .map(|i| i.method);
        self.metrics
            .request(label, method, started.elapsed().as_secs_f64());
        outcome
    }

    async fn evaluate(&self, view: &RequestView<'_>) -> GateOutcome {
        let path = normalize_path(view.path).map_err(Denial::BadPath)?;
        let target = Target {
            method: view.method,
            host: view.host,
            path: &path,
        };
        let rule = self.policy.matching(&target);
        let auth = self.authenticate(view.headers).await;
        if rule.access == Access::Public {
            // Public paths still tell the app who is asking, when they can.
            return Ok(match auth {
                Ok(Some((id, source))) => Admission {
                    identity: Some(id),
                    consumed: Some(source),
                },
                _ => Admission {
                    identity: None,
                    consumed: None,
                },
            });
        }
        let found = match auth {
            Ok(found) => found,
            Err(AuthFailure::Malformed(e)) => return Err(Denial::Malformed(e)),
            Err(AuthFailure::Unauthenticated(u)) if rule.access != Access::Deny => {
                return Err(Denial::Unauthenticated(u))
            }
            Err(AuthFailure::Unauthenticated(_)) => None,
        };
        let decision = decide(rule, found.as_ref().map(|(id, _)| id.as_ref()));
        match decision.verdict {
            Verdict::Allow => Ok(Admission {
                consumed: found.as_ref().map(|(_, s)| *s),
                identity: found.map(|(id, _)| id),
            }),
            Verdict::Unauthenticated => Err(Denial::Unauthenticated(Unauthenticated::Missing)),
            Verdict::Forbidden => Err(Denial::Forbidden {
                rule: rule.name(),
                requirement: rule.access.to_string(),
            }),
        }
    }

    /// Try each presented credential in order; the first that verifies wins.
    async fn authenticate(
        &self,
        headers: &HeaderMap,
    ) -> Result<Option<(Arc<Identity>, CredentialSource)>, AuthFailure> {
        let presented = match credentials::extract(headers, &self.cookie_name) {
            Ok(p) => p,
            Err(e) if e.is_malformed() => return Err(AuthFailure::Malformed(e)),
            Err(e) => {
                return Err(AuthFailure::Unauthenticated(Unauthenticated::Unsupported(
                    e,
                )))
            }
        };
        let mut first_error = None;
        for cred in &presented {
            match self.authn.authenticate(cred).await {
                Ok((id, outcome)) => {
                    self.metrics.cache(outcome == CacheOutcome::Hit);
                    return Ok(Some((id, cred.source())));
                }
                Err(e) => {
                    self.metrics.cache(false);
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(AuthFailure::Unauthenticated(Unauthenticated::Rejected(e))),
            None => Ok(None),
        }
    }
}
