//! The settings of the services a request meets: identity headers, the
//! redirect allow-list, sessions, signed tokens, trusted issuers, regulation
//! and two-factor.

use crate::accounts::users::valid_name;
use crate::config::raw;
use crate::config::Checker;
use crate::directory::Roles;
use crate::identity::IdentityField;
use crate::redirect::RedirectPolicy;
use crate::regulation::RegulationSettings;
use crate::session::SessionSettings;
use crate::tokens::external::IssuerSettings;
use crate::tokens::{KeyMaterial, TokenSettings};
use crate::two_factor::cipher::{SecretCipher, MIN_KEY_CHARS};
use crate::two_factor::TwoFactorSettings;
use crate::upstream::headers::{static_name, HeaderSettings, IdentityHeader, MethodOverride};
use std::time::Duration;
use url::Url;

pub(super) fn headers(c: &mut Checker, raw: raw::RawHeaders) -> HeaderSettings {
    use IdentityField::*;
    let wanted = [
        ("user", raw.user, "Remote-User", User),
        ("email", raw.email, "Remote-Email", Email),
        ("name", raw.name, "Remote-Name", Name),
        ("groups", raw.groups, "Remote-Groups", Groups),
        (
            "permissions",
            raw.permissions,
            "Remote-Permissions",
            Permissions,
        ),
        (
            "auth_request_user",
            raw.auth_request_user,
            "X-Auth-Request-User",
            User,
        ),
        (
            "auth_request_email",
            raw.auth_request_email,
            "X-Auth-Request-Email",
            Email,
        ),
        (
            "auth_request_groups",
            raw.auth_request_groups,
            "X-Auth-Request-Groups",
            Groups,
        ),
        ("method", raw.method, "X-Auth-Method", Method),
    ];
    let mut names: Vec<IdentityHeader> = Vec::new();
    for (key, value, default, field) in wanted {
        let name = value.unwrap_or_else(|| default.to_owned());
        if name.is_empty() {
            continue;
        }
        match static_name(&name) {
            Some(h) if names.iter().any(|n| n.name == h) => {
                c.err(&format!("headers.{key}"), format!("`{name}` is used twice"));
            }
            Some(h) => names.push(IdentityHeader { name: h, field }),
            None => c.err(
                &format!("headers.{key}"),
                format!("`{name}` is not a valid header name"),
            ),
        }
    }
    let method_override = match raw.method_override.as_deref() {
        None | Some("strip") => MethodOverride::Strip,
        Some("judge") => MethodOverride::Judge,
        Some(other) => {
            c.err(
                "headers.method_override",
                format!("`{other}` must be `strip` or `judge`"),
            );
            MethodOverride::Strip
        }
    };
    HeaderSettings {
        names,
        pass_credentials: raw.pass_credentials.unwrap_or(false),
        method_override,
        set: HeaderSettings::new_set(),
    }
}

/// `rd` may go to `public_url`'s host, `redirect.allowed_domains`, and the
/// session cookie's domain (one sign-in covers it, so returning there is safe).
pub(super) fn redirect(
    c: &mut Checker,
    raw: raw::RawRedirect,
    public_url: Option<&Url>,
    session_domain: Option<&str>,
) -> Option<RedirectPolicy> {
    let mut domains = Vec::new();
    for (i, d) in raw.allowed_domains.iter().enumerate() {
        let d = d
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .to_ascii_lowercase();
        if d.is_empty()
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            c.err(
                &format!("redirect.allowed_domains[{i}]"),
                format!("`{d}` is not a domain name"),
            );
        } else {
            domains.push(d);
        }
    }
    if let Some(d) = session_domain.filter(|d| !domains.iter().any(|known| known == d)) {
        domains.push(d.to_owned());
    }
    Some(RedirectPolicy::new(public_url?, domains))
}

pub(super) fn session(
    c: &mut Checker,
    raw: raw::RawSession,
    public_url: Option<&Url>,
) -> SessionSettings {
    let cookie_name = raw
        .cookie_name
        .unwrap_or_else(|| "gatehouse_session".into());
    if cookie_name.is_empty()
        || !cookie_name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        c.err(
            "session.cookie_name",
            format!("`{cookie_name}` must be letters, digits, `_`, `-`, `.`"),
        );
    }
    let idle_timeout = c.duration(
        "session.idle_timeout",
        raw.idle_timeout.as_deref(),
        Duration::from_secs(3600),
    );
    let lifetime = c.duration(
        "session.lifetime",
        raw.lifetime.as_deref(),
        Duration::from_secs(12 * 3600),
    );
    if idle_timeout.is_zero() || lifetime.is_zero() {
        c.err(
            "session",
            "idle_timeout and lifetime must be longer than zero",
        );
    }
    let domain = raw
        .domain
        .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    if let Some(d) = &domain {
        if d.is_empty()
            || !d
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        {
            c.err("session.domain", format!("`{d}` is not a domain name"));
        }
    }
    SessionSettings {
        cookie_name,
        idle_timeout,
        lifetime,
        domain,
        secure: raw
            .secure
            .unwrap_or_else(|| public_url.is_none_or(|u| u.scheme() == "https")),
    }
}

pub(super) fn tokens(
    c: &mut Checker,
    raw: raw::RawTokens,
    public_url: Option<&Url>,
) -> TokenSettings {
    // Without a `public_url` (reported there), the default issuer is unknown
    // and the configuration fails anyway: not a second error.
    let issuer = match raw.issuer {
        Some(issuer) => {
            if issuer.is_empty() {
                c.err("tokens.issuer", "must not be empty");
            }
            issuer
        }
        None => public_url.map_or(String::new(), |u| {
            u.as_str().trim_end_matches('/').to_owned()
        }),
    };
    let audience = raw.audience.unwrap_or_else(|| issuer.clone());
    let ttl = c.duration(
        "tokens.ttl",
        raw.ttl.as_deref(),
        Duration::from_secs(24 * 3600),
    );
    if ttl < Duration::from_secs(60) {
        c.err("tokens.ttl", "must be at least one minute");
    }
    let mut keys: Vec<KeyMaterial> = Vec::new();
    for (i, k) in raw.keys.iter().enumerate() {
        let at = |f: &str| format!("tokens.keys[{i}].{f}");
        if !valid_name(&k.kid) || keys.iter().any(|o| o.kid == k.kid) {
            c.err(
                &at("kid"),
                format!("`{}` must be a unique id of letters, digits, `_-.@`", k.kid),
            );
        }
        let parsed = match (&k.private_key, &k.public_key) {
            (Some(pem), None) => {
                KeyMaterial::from_private_pem(&k.kid, pem)
                    .map_err(|e| (at("private_key"), e.to_string()))
            }
            (None, Some(pem)) => {
                KeyMaterial::from_public_pem(&k.kid, pem)
                    .map_err(|e| (at("public_key"), e.to_string()))
            }
            _ => Err((
                format!("tokens.keys[{i}]"),
                "give `private_key` (or `private_key_file`) to sign, or `public_key` for a retired key"
                    .to_owned(),
            )),
        };
        match parsed {
            Ok(key) => keys.push(key),
            Err((path, e)) => c.err(&path, e),
        }
    }
    if !raw.keys.is_empty() && raw.keys.iter().all(|k| k.private_key.is_none()) {
        c.err(
            "tokens.keys",
            "at least one key needs a `private_key` to sign with",
        );
    }
    TokenSettings {
        issuer,
        audience,
        ttl,
        keys,
    }
}

pub(super) fn trusted_issuers(
    c: &mut Checker,
    raw: Vec<raw::RawTrustedIssuer>,
    roles: &Roles,
) -> Vec<IssuerSettings> {
    use jsonwebtoken::Algorithm;
    let mut out: Vec<IssuerSettings> = Vec::new();
    for (i, t) in raw.into_iter().enumerate() {
        let at = |f: &str| format!("trusted_issuers[{i}].{f}");
        if t.issuer.is_empty() || out.iter().any(|o| o.issuer == t.issuer) {
            c.err(&at("issuer"), "must be a non-empty issuer, listed once");
        }
        let audience = t.audience.map(raw::OneOrMany::into_vec).unwrap_or_default();
        if audience.is_empty() {
            c.err(
                &at("audience"),
                "is required: tokens meant for other applications must not open this one",
            );
        }
        let jwks_url = t.jwks_url.as_deref().and_then(|u| match Url::parse(u) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Some(url),
            _ => {
                c.err(&at("jwks_url"), format!("`{u}` is not an http(s) URL"));
                None
            }
        });
        if t.jwks_url.is_none() && !t.issuer.is_empty() && Url::parse(&t.issuer).is_err() {
            c.err(
                &at("jwks_url"),
                "is required when `issuer` is not a URL to discover it from",
            );
        }
        let mut algorithms = Vec::new();
        for (j, a) in t
            .algorithms
            .unwrap_or_else(|| vec!["RS256".into()])
            .iter()
            .enumerate()
        {
            match a.parse::<Algorithm>() {
                Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) | Err(_) => c.err(
                    &format!("trusted_issuers[{i}].algorithms[{j}]"),
                    format!(
                        "`{a}` must be an asymmetric JWS algorithm (RS256, PS256, ES256, EdDSA, …)"
                    ),
                ),
                Ok(alg) => algorithms.push(alg),
            }
        }
        if algorithms.is_empty() {
            algorithms.push(Algorithm::RS256);
        }
        let default_role = mapped_roles(
            c,
            &format!("trusted_issuers[{i}]"),
            t.default_role,
            &t.role_map,
            roles,
        );
        let leeway = c.duration(&at("leeway"), t.leeway.as_deref(), Duration::from_secs(5));
        out.push(IssuerSettings {
            issuer: t.issuer,
            audience,
            jwks_url,
            algorithms,
            username_claim: t.username_claim.unwrap_or_else(|| "sub".into()),
            roles_claim: t.roles_claim,
            role_map: t.role_map,
            default_role,
            leeway,
        });
    }
    out
}

pub(super) fn regulation(c: &mut Checker, raw: raw::RawRegulation) -> RegulationSettings {
    let d = RegulationSettings::default();
    let settings = RegulationSettings {
        max_retries: raw.max_retries.unwrap_or(d.max_retries),
        max_retries_per_ip: raw.max_retries_per_ip.unwrap_or(d.max_retries_per_ip),
        find_time: c.duration(
            "regulation.find_time",
            raw.find_time.as_deref(),
            d.find_time,
        ),
        ban_time: c.duration("regulation.ban_time", raw.ban_time.as_deref(), d.ban_time),
    };
    if settings.max_retries > 0 && (settings.find_time.is_zero() || settings.ban_time.is_zero()) {
        c.err(
            "regulation",
            "find_time and ban_time must be longer than zero",
        );
    }
    settings
}

pub(super) fn two_factor(
    c: &mut Checker,
    raw: raw::RawTwoFactor,
    title: &str,
    roles: &Roles,
) -> TwoFactorSettings {
    let d = TwoFactorSettings::default();
    // Apps split the label on `:`; a title borrowed as issuer loses them.
    let issuer = match raw.issuer {
        Some(issuer) => {
            if issuer.is_empty() || issuer.contains(':') {
                c.err(
                    "two_factor.issuer",
                    "must be a non-empty name without `:` (authenticator apps split on it)",
                );
            }
            issuer
        }
        None => {
            let borrowed = title.replace(':', "").trim().to_owned();
            if borrowed.is_empty() {
                c.err(
                    "portal.title",
                    "must name the site (authenticator apps show it, unless `two_factor.issuer` is set)",
                );
            }
            borrowed
        }
    };
    let mut long_enough = |key: &str, value: Option<&str>| match value {
        Some(k) if k.chars().count() < MIN_KEY_CHARS => {
            c.err(
                key,
                format!(
                    "must be at least {MIN_KEY_CHARS} characters (try `openssl rand -base64 32`)"
                ),
            );
            false
        }
        _ => true,
    };
    let key = raw.encryption_key.as_deref();
    let previous = raw.previous_encryption_key.as_deref();
    let ok = long_enough("two_factor.encryption_key", key)
        & long_enough("two_factor.previous_encryption_key", previous);
    if previous.is_some() && (key.is_none() || key == previous) {
        c.err(
            "two_factor.previous_encryption_key",
            "needs a different `two_factor.encryption_key` to rotate to",
        );
    }
    let cipher = match key {
        Some(k) if ok => Some(SecretCipher::new(k, previous)),
        _ => None,
    };
    let mut required = std::collections::BTreeSet::new();
    for (i, role) in raw.required_for_roles.into_iter().enumerate() {
        if !roles.contains(&role) {
            c.err(
                &format!("two_factor.required_for_roles[{i}]"),
                format!("role `{role}` is not defined under `roles`"),
            );
        }
        required.insert(role);
    }
    // A key too short is reported at the key, not here again.
    if !required.is_empty() && key.is_none() {
        c.err(
            "two_factor.required_for_roles",
            "needs `two_factor.encryption_key` (or `encryption_key_file`): without it nobody can enrol",
        );
    }
    let pending_ttl = c.duration(
        "two_factor.pending_ttl",
        raw.pending_ttl.as_deref(),
        d.pending_ttl,
    );
    if pending_ttl.is_zero() {
        c.err("two_factor.pending_ttl", "must be longer than zero");
    }
    TwoFactorSettings {
        issuer,
        required_for_roles: required,
        cipher,
        pending_ttl,
    }
}

/// `default_role` (default `user`) and every role `role_map` names must be
/// defined; `at` is the entry's key path. Answers the default role.
pub(super) fn mapped_roles(
    c: &mut Checker,
    at: &str,
    default_role: Option<String>,
    role_map: &std::collections::BTreeMap<String, String>,
    roles: &Roles,
) -> String {
    let default_role = default_role.unwrap_or_else(|| "user".into());
    if !roles.contains(&default_role) {
        c.err(
            &format!("{at}.default_role"),
            format!("role `{default_role}` is not defined under `roles`"),
        );
    }
    for (from, role) in role_map {
        if !roles.contains(role) {
            c.err(
                &format!("{at}.role_map.{from}"),
                format!("role `{role}` is not defined under `roles`"),
            );
        }
    }
    default_role
}
