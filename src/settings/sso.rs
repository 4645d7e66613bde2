//! `oidc:`: the single sign-on providers, checked into [`SsoSettings`].

use super::services::mapped_roles;
use crate::config::raw;
use crate::config::Checker;
use crate::directory::Roles;
use crate::sso::{ProviderSettings, SsoSettings};
use url::Url;

pub(super) fn oidc(c: &mut Checker, raw: raw::RawOidc, roles: &Roles) -> SsoSettings {
    let mut providers: Vec<ProviderSettings> = Vec::new();
    for (i, p) in raw.providers.into_iter().enumerate() {
        let at = |k: &str| format!("oidc.providers[{i}].{k}");
        let id_ok = !p.id.is_empty()
            && p.id.len() <= 64
            && p.id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-'));
        if !id_ok {
            c.err(
                &at("id"),
                format!(
                    "`{}` must be 1-64 of `a-z`, `0-9`, `_`, `-` (it appears in URLs)",
                    p.id
                ),
            );
        } else if providers.iter().any(|o| o.id == p.id) {
            c.err(&at("id"), format!("`{}` is used twice", p.id));
        }
        match Url::parse(&p.issuer) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {}
            _ => c.err(
                &at("issuer"),
                format!("`{}` is not an http(s) URL (discovery reads `{{issuer}}/.well-known/openid-configuration`)", p.issuer),
            ),
        }
        if p.client_id.is_empty() {
            c.err(&at("client_id"), "must not be empty");
        }
        let scopes = p
            .scopes
            .unwrap_or_else(|| vec!["openid".into(), "email".into(), "profile".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            c.err(&at("scopes"), "must include `openid`");
        }
        let default_role = mapped_roles(
            c,
            &format!("oidc.providers[{i}]"),
            p.default_role,
            &p.role_map,
            roles,
        );
        let allowed_email_domains = p
            .allowed_email_domains
            .iter()
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .collect();
        providers.push(ProviderSettings {
            display_name: p.display_name.unwrap_or_else(|| p.id.clone()),
            id: p.id,
            issuer: p.issuer,
            client_id: p.client_id,
            client_secret: p.client_secret,
            scopes,
            username_claim: p
                .username_claim
                .unwrap_or_else(|| "preferred_username".into()),
            groups_claim: p.groups_claim.unwrap_or_else(|| "groups".into()),
            role_map: p.role_map,
            default_role,
            allowed_groups: p.allowed_groups,
            allowed_email_domains,
            auto_create_users: p.auto_create_users.unwrap_or(true),
            link_existing_by_email: p.link_existing_by_email.unwrap_or(false),
            sync_role: p.sync_role.unwrap_or(true),
        });
    }
    let auto_redirect = raw.auto_redirect.filter(|a| !a.is_empty());
    if let Some(a) = &auto_redirect {
        if !providers.iter().any(|p| &p.id == a) {
            c.err(
                "oidc.auto_redirect",
                format!("`{a}` is not the id of a provider under `oidc.providers`"),
            );
        }
    }
    SsoSettings {
        providers,
        auto_redirect,
    }
}
