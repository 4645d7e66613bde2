//! Single sign-on: Gatehouse as an OpenID Connect relying party of several
//! providers at once.
//!
//! Owns the providers' settings ([`SsoSettings`]), their discovery and the
//! code flow (`provider`, through the `openidconnect` crate), reading claims
//! into a user name, groups and a role (`claims`), and back-channel logout
//! tokens (`logout`). Pending sign-ins and links to local accounts live in
//! the store; which account a sign-in opens is `accounts::sso`'s rule; the
//! pages are the portal's.

mod claims;
mod logout;
mod provider;

pub use claims::{check_allowed, role_for, Claims, NotAllowed};
pub use logout::LogoutNotice;

use openidconnect::RedirectUrl;
use provider::Provider;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long a sign-in sent to a provider may take to come back.
pub const PENDING_TTL: Duration = Duration::from_secs(600);

/// One provider (`oidc.providers[]`), validated.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// `[a-z0-9_-]`; appears in URLs.
    pub id: String,
    pub display_name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub username_claim: String,
    pub groups_claim: String,
    pub role_map: BTreeMap<String, String>,
    pub default_role: String,
    pub allowed_groups: Vec<String>,
    pub allowed_email_domains: Vec<String>,
    pub auto_create_users: bool,
    pub link_existing_by_email: bool,
    pub sync_role: bool,
}

impl ProviderSettings {
    /// The defaults of the contract, for provider `id`.
    pub fn for_tests(id: &str) -> Self {
        ProviderSettings {
            id: id.to_owned(),
            display_name: id.to_owned(),
            issuer: format!("https://{id}.example"),
            client_id: "gatehouse".into(),
            client_secret: None,
            scopes: vec!["openid".into(), "email".into(), "profile".into()],
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            role_map: BTreeMap::new(),
            default_role: "user".into(),
            allowed_groups: Vec::new(),
            allowed_email_domains: Vec::new(),
            auto_create_users: true,
            link_existing_by_email: false,
            sync_role: true,
        }
    }
}

/// `oidc:`, validated.
#[derive(Debug, Clone, Default)]
pub struct SsoSettings {
    pub providers: Vec<ProviderSettings>,
    /// A provider id: the sign-in page goes straight there.
    pub auto_redirect: Option<String>,
}

/// Why a single sign-on step failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    #[error("no single sign-on provider `{0}`")]
    UnknownProvider(String),
    /// Discovery, the token endpoint, userinfo or the keys did not answer.
    #[error("the identity provider cannot be reached ({0})")]
    Unreachable(String),
    /// The provider answered, and said no (e.g. the code was used already).
    #[error("the identity provider refused ({0})")]
    Refused(String),
    /// A signature, issuer, audience, nonce or expiry check failed.
    #[error("the identity provider's token is not valid ({0})")]
    InvalidToken(String),
}

/// A sign-in sent to a provider: what to keep until it comes back.
pub struct SignInStart {
    /// Where the browser goes.
    pub url: url::Url,
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// A sign-in that came back with a valid ID token.
pub struct ProviderSignIn {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// The provider's session id (`sid`), for back-channel logout.
    pub sid: Option<String>,
    /// The raw ID token (its hint ends the provider's session at logout).
    pub id_token: String,
    pub claims: Claims,
}

/// The configured providers, each discovered on first use.
pub struct Sso {
    providers: Vec<Provider>,
    auto_redirect: Option<String>,
    redirect: Option<RedirectUrl>,
    http: reqwest::Client,
}

impl Sso {
    /// `redirect_uri` is `{public_url}{prefix}/oidc/callback`.
    pub fn new(settings: SsoSettings, redirect_uri: &str) -> Self {
        // Following redirects would let a provider point Gatehouse anywhere.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Sso {
            providers: settings.providers.into_iter().map(Provider::new).collect(),
            auto_redirect: settings.auto_redirect,
            redirect: RedirectUrl::new(redirect_uri.to_owned()).ok(),
            http,
        }
    }

    pub fn is_enabled(&self) -> bool {
        !self.providers.is_empty()
    }

    pub fn providers(&self) -> impl Iterator<Item = &ProviderSettings> {
        self.providers.iter().map(|p| &p.settings)
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderSettings> {
        self.find(id).ok().map(|p| &p.settings)
    }

    /// The provider the sign-in page sends everyone to, if any.
    pub fn auto_redirect(&self) -> Option<&str> {
        self.auto_redirect.as_deref()
    }

    fn find(&self, id: &str) -> Result<&Provider, SsoError> {
        self.providers
            .iter()
            .find(|p| p.settings.id == id)
            .ok_or_else(|| SsoError::UnknownProvider(id.to_owned()))
    }

    fn redirect(&self) -> Result<&RedirectUrl, SsoError> {
        self.redirect
            .as_ref()
            .ok_or_else(|| SsoError::Unreachable("the callback URL is not valid".into()))
    }

    /// Start a sign-in at provider `id` (discovering it first if need be).
    pub async fn begin(&self, id: &str) -> Result<SignInStart, SsoError> {
        let provider = self.find(id)?;
        let d = provider
            .discovered(&self.http, self.redirect()?, None)
            .await?;
        let a = provider.authorization(&d);
        Ok(SignInStart {
            url: a.url,
            state: a.state,
            nonce: a.nonce,
            pkce_verifier: a.pkce_verifier,
        })
    }

    /// Finish a sign-in: exchange `code`, verify the ID token against
    /// `nonce`, read the claims.
    pub async fn finish(
        &self,
        id: &str,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<ProviderSignIn, SsoError> {
        let provider = self.find(id)?;
        let v = provider
            .finish(&self.http, self.redirect()?, code, nonce, pkce_verifier)
            .await?;
        Ok(ProviderSignIn {
            provider: id.to_owned(),
            issuer: v.issuer,
            subject: v.subject,
            sid: v.sid,
            id_token: v.id_token,
            claims: v.claims,
        })
    }

    /// RP-initiated logout: where to send the browser after ending the
    /// local session, when provider `id` has an end-session endpoint.
    pub async fn end_session_url(
        &self,
        id: &str,
        id_token: &str,
        post_logout: &str,
    ) -> Option<url::Url> {
        self.find(id)
            .ok()?
            .end_session_url(id_token, post_logout)
            .await
    }

    /// Verify a back-channel `logout_token`: which provider sent it, and
    /// whose sessions it ends.
    pub async fn verify_logout_token(&self, token: &str) -> Result<LogoutNotice, SsoError> {
        let issuer = logout::unverified_issuer(token)?;
        let mut last = SsoError::InvalidToken("no provider has this issuer".into());
        let redirect = self.redirect()?;
        for p in self
            .providers
            .iter()
            .filter(|p| same_issuer(&p.settings.issuer, &issuer))
        {
            let d = p.discovered(&self.http, redirect, None).await?;
            match logout::verify(token, &p.settings, &d.metadata) {
                Ok(notice) => return Ok(notice),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

fn same_issuer(configured: &str, claimed: &str) -> bool {
    configured.trim_end_matches('/') == claimed.trim_end_matches('/')
}
