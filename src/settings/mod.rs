//! The configuration compiled into what each module runs with: the policy,
//! the directory of file users and keys, signing keys, trusted issuers,
//! sessions, two-factor and regulation settings.
//!
//! `config` reads the file and checks the sections nobody else owns; each
//! module here asks that module's own types to accept its section, and every
//! refusal goes back to `config` with its key path so `check-config` reports
//! them all, with lines, in one run.

mod access;
mod accounts;
mod audit;
mod mail;
mod passwords;
mod services;
mod sso;

use crate::accounts::registration::RegistrationSettings;
use crate::accounts::users::PasswordPolicy;
use crate::config::{
    self, CacheSettings, Checker, ConfigErrors, PortalSettings, ServerSettings, UpstreamSettings,
};
use crate::directory::Directory;
use crate::mail::{MailTemplates, SmtpSettings};
use crate::policy::Policy;
use crate::redirect::RedirectPolicy;
use crate::regulation::RegulationSettings;
use crate::request::ReadSettings;
use crate::session::SessionSettings;
use crate::sso::SsoSettings;
use crate::tokens::external::IssuerSettings;
use crate::tokens::TokenSettings;
use crate::two_factor::TwoFactorSettings;
use crate::upstream::headers::HeaderSettings;
use std::path::Path;
use url::Url;

/// The whole validated configuration.
#[derive(Debug)]
pub struct Config {
    pub server: ServerSettings,
    pub public_url: Url,
    pub upstream: UpstreamSettings,
    /// `sqlite://…` or `postgres://…`.
    pub store_url: String,
    pub session: SessionSettings,
    pub portal: PortalSettings,
    pub policy: Policy,
    pub directory: Directory,
    pub headers: HeaderSettings,
    pub cache: CacheSettings,
    pub redirect: RedirectPolicy,
    pub tokens: TokenSettings,
    pub trusted_issuers: Vec<IssuerSettings>,
    pub regulation: RegulationSettings,
    pub two_factor: TwoFactorSettings,
    /// How request paths are read (`paths:`).
    pub paths: ReadSettings,
    /// Single sign-on providers (`oidc:`).
    pub sso: SsoSettings,
    /// The SMTP server (`smtp:`); none: mail waits in the outbox.
    pub smtp: Option<SmtpSettings>,
    /// The mail templates, with `smtp.templates_dir`'s overrides.
    pub mail_templates: MailTemplates,
    /// Who may create their own account (`registration:`).
    pub registration: RegistrationSettings,
    /// The rule for new passwords (`passwords:`).
    pub passwords: PasswordPolicy,
    /// The audit trail (`audit:`).
    pub audit: crate::audit::AuditSettings,
}

impl Config {
    /// Load a file, applying the process environment's overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
        Self::compile(config::Document::load(path)?)
    }

    /// Parse configuration text with the given environment.
    pub fn from_yaml(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigErrors> {
        Self::compile(config::Document::read(text, env)?)
    }

    fn compile(document: config::Document) -> Result<Config, ConfigErrors> {
        let (raw, mut problems) = document.into_parts();
        let config = compile(raw, &mut problems.checker());
        problems.finish(config)
    }
}

fn compile(raw: config::raw::RawConfig, c: &mut Checker) -> Option<Config> {
    use config::sections;
    let server = sections::server(c, raw.server);
    let public_url = sections::public_url(
        c,
        raw.public_url.as_deref(),
        server.as_ref().map(|s| s.listen),
    );
    let upstream = sections::upstream(c, raw.upstream);
    let store_url = sections::store_url(c, raw.store);
    let portal = sections::portal(c, raw.portal);
    let session = services::session(c, raw.session, public_url.as_ref());
    let roles = access::roles(c, raw.roles);
    let (paths, case) = access::paths(raw.paths);
    let policy = access::rules(c, raw.rules, case);
    let users = access::users(c, raw.users, &roles);
    let api_keys = access::api_keys(c, raw.api_keys, &users);
    let headers = services::headers(c, raw.headers);
    let cache = sections::cache(c, raw.cache);
    let redirect = services::redirect(
        c,
        raw.redirect,
        public_url.as_ref(),
        session.domain.as_deref(),
    );
    let tokens = services::tokens(c, raw.tokens, public_url.as_ref());
    let trusted_issuers = services::trusted_issuers(c, raw.trusted_issuers, &roles);
    let regulation = services::regulation(c, raw.regulation);
    let two_factor = services::two_factor(c, raw.two_factor, &portal.title, &roles);
    let sso = sso::oidc(c, raw.oidc, &roles);
    let (smtp, mail_templates) = mail::smtp(c, raw.smtp, &portal.title);
    let registration = accounts::registration(c, raw.registration, &roles);
    let passwords = passwords::passwords(c, raw.passwords);
    let audit = audit::audit(c, raw.audit);
    Some(Config {
        server: server?,
        public_url: public_url?,
        upstream: upstream?,
        store_url,
        session,
        portal,
        policy: policy?,
        directory: Directory {
            users,
            api_keys,
            roles,
        },
        headers,
        cache,
        redirect: redirect?,
        tokens,
        trusted_issuers,
        regulation,
        two_factor,
        paths,
        sso,
        smtp,
        mail_templates: mail_templates?,
        registration,
        passwords,
        audit,
    })
}
