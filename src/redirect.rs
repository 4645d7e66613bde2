//! Where `rd` (or `X-Auth-Request-Redirect`) may send a user: the open-redirect guard.
//!
//! A destination is followed only when it is `public_url`'s host or a domain
//! in `redirect.allowed_domains` (or a subdomain of either), over https — or
//! plain http when `public_url` itself is http. Everything else is ignored.

use url::Url;

/// The compiled destination policy.
#[derive(Debug, Clone)]
pub struct RedirectPolicy {
    public_url: Url,
    /// Lowercase domains, public_url's host first.
    domains: Vec<String>,
    allow_http: bool,
}

impl RedirectPolicy {
    pub fn new(public_url: &Url, allowed_domains: Vec<String>) -> Self {
        let mut domains = vec![public_url
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase()];
        domains.extend(allowed_domains);
        RedirectPolicy {
            public_url: public_url.clone(),
            domains,
            allow_http: public_url.scheme() == "http",
        }
    }

    /// The URL to send the user to, if `rd` is an allowed destination.
    /// A path (`/app/page`) is taken relative to `public_url`.
    pub fn validate(&self, rd: &str) -> Option<Url> {
        if rd.is_empty() || rd.len() > 4096 {
            return None;
        }
        if rd.bytes().any(|b| b <= 0x20 || b == 0x7f || b == b'\\') {
            return None;
        }
        let url = if rd.starts_with('/') {
            if rd.starts_with("//") {
                return None;
            }
            self.public_url.join(rd).ok()?
        } else {
            Url::parse(rd).ok()?
        };
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return None,
        }
        if !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        let host = url.host_str()?.to_ascii_lowercase();
        let allowed = self.domains.iter().any(|d| {
            host == *d
                || (host.len() > d.len()
                    && host.ends_with(d.as_str())
                    && host.as_bytes()[host.len() - d.len() - 1] == b'.')
        });
        allowed.then_some(url)
    }

    /// Is `host` (no port) one Gatehouse may build return URLs for?
    pub fn host_allowed(&self, host: &str) -> bool {
        self.validate(&format!("{}://{host}/", self.public_url.scheme()))
            .is_some()
    }

    pub fn public_url(&self) -> &Url {
        &self.public_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(public: &str) -> RedirectPolicy {
        RedirectPolicy::new(&Url::parse(public).unwrap(), vec!["example.org".into()])
    }

    #[test]
    fn refuses_open_redirects() {
        let p = policy("https://app.example.com");
        for rd in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "https://evil.com",
            "https://app.example.com.evil.com/",
            "https://evilexample.org/",
            "https://app.example.com@evil.com/",
            "https://user:pw@app.example.com/",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,x",
            "http://app.example.com/",
            "https:evil.com",
            "https://app.example.com/\nx",
            " https://app.example.com/",
            "",
        ] {
            assert_eq!(p.validate(rd), None, "{rd:?} was accepted");
        }
    }

    #[test]
    fn follows_allowed_destinations() {
        let p = policy("https://app.example.com");
        for (rd, want) in [
            ("/dash?x=1", "https://app.example.com/dash?x=1"),
            ("https://app.example.com/a", "https://app.example.com/a"),
            (
                "https://APP.example.com:8443/a",
                "https://app.example.com:8443/a",
            ),
            (
                "https://sub.app.example.com/",
                "https://sub.app.example.com/",
            ),
            ("https://example.org/x", "https://example.org/x"),
            ("https://a.example.org/x", "https://a.example.org/x"),
        ] {
            assert_eq!(
                p.validate(rd).map(String::from).as_deref(),
                Some(want),
                "{rd}"
            );
        }
    }

    #[test]
    fn plain_http_only_when_public_url_is_http() {
        let p = policy("http://127.0.0.1:8080");
        assert!(p.validate("http://127.0.0.1:8080/x").is_some());
        assert!(p.validate("http://127.0.0.2/x").is_none());
    }
}
