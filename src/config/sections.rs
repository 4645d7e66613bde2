//! The sections of the file that belong to no later module: the listeners,
//! `public_url`, the upstream, the store's URL, the portal prefix and the
//! cache. Each is checked here into plain settings.

use super::check::Checker;
use super::raw;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub trusted_proxies: Vec<IpNet>,
    pub threads: usize,
    pub grace_period: Duration,
    pub tls: Option<TlsSettings>,
}

#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

/// Where allowed requests go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// The built-in echo app.
    Echo,
    /// A real app, resolved at start.
    Http {
        addr: SocketAddr,
        tls: bool,
        /// Host name for SNI and certificate checks.
        host: String,
    },
}

#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    pub target: UpstreamTarget,
    pub connect_timeout: Duration,
    pub read_timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct PortalSettings {
    /// `/_auth`: no trailing slash.
    pub prefix: String,
    pub title: String,
    /// The sign-in page shows the name-and-password form.
    pub password_login: bool,
    /// An `https://` URL or a `/path`, shown above the title.
    pub logo_url: Option<String>,
    /// `#rgb` or `#rrggbb`, lower-cased: buttons and links.
    pub accent_color: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub ttl: Duration,
    pub max_entries: u64,
}

/// Who may describe a request in `X-Forwarded-*` / `X-Original-*` when
/// `server.trusted_proxies` is absent: a proxy on the same host.
const DEFAULT_TRUSTED_PROXIES: [&str; 2] = ["127.0.0.0/8", "::1/128"];

pub fn server(c: &mut Checker, raw: raw::RawServer) -> Option<ServerSettings> {
    let listen = c.addr(
        "server.listen",
        raw.listen.as_deref().unwrap_or("0.0.0.0:8080"),
    );
    let metrics_listen = raw
        .metrics_listen
        .as_deref()
        .and_then(|m| c.addr("server.metrics_listen", m));
    let mut trusted_proxies = Vec::new();
    let listed = raw
        .trusted_proxies
        .unwrap_or_else(|| DEFAULT_TRUSTED_PROXIES.map(String::from).to_vec());
    for (i, p) in listed.iter().enumerate() {
        let parsed = p
            .parse::<IpNet>()
            .or_else(|_| p.parse::<std::net::IpAddr>().map(IpNet::from));
        match parsed {
            Ok(net) => trusted_proxies.push(net),
            Err(_) => c.err(
                &format!("server.trusted_proxies[{i}]"),
                format!("`{p}` is not an IP address or CIDR range"),
            ),
        }
    }
    let threads = raw
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads == 0 || threads > 256 {
        c.err("server.threads", "must be between 1 and 256");
    }
    let grace_period = c.duration(
        "server.grace_period",
        raw.grace_period.as_deref(),
        Duration::from_secs(5),
    );
    let tls = raw.tls.map(|t| {
        for (key, p) in [("cert_path", &t.cert_path), ("key_path", &t.key_path)] {
            // Pingora panics on unreadable PEM at start-up: catch it here instead.
            let at = format!("server.tls.{key}");
            match std::fs::read_to_string(p) {
                Ok(pem) if pem.contains("-----BEGIN ") => {}
                Ok(_) => c.err(&at, format!("`{p}` is not a PEM file")),
                Err(e) => c.err(&at, format!("cannot read `{p}`: {e}")),
            }
        }
        TlsSettings {
            cert_path: t.cert_path.into(),
            key_path: t.key_path.into(),
        }
    });
    Some(ServerSettings {
        listen: listen?,
        metrics_listen,
        trusted_proxies,
        threads: threads.clamp(1, 256),
        grace_period,
        tls,
    })
}

pub fn public_url(c: &mut Checker, raw: Option<&str>, listen: Option<SocketAddr>) -> Option<Url> {
    let text = match raw {
        Some(t) => t.to_owned(),
        None => format!("http://localhost:{}", listen.map_or(8080, |l| l.port())),
    };
    match Url::parse(&text) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if u.query().is_some() || u.fragment().is_some() || u.path() != "/" {
                c.err(
                    "public_url",
                    "must be an origin like `https://app.example.com` (no path, query or fragment)",
                );
            }
            Some(u)
        }
        _ => {
            c.err("public_url", format!("`{text}` is not an http(s) URL"));
            None
        }
    }
}

pub fn upstream(c: &mut Checker, raw: raw::RawUpstream) -> Option<UpstreamSettings> {
    let connect_timeout = c.duration(
        "upstream.connect_timeout",
        raw.connect_timeout.as_deref(),
        Duration::from_secs(5),
    );
    let read_timeout = raw
        .read_timeout
        .as_deref()
        .map(|r| c.duration("upstream.read_timeout", Some(r), Duration::from_secs(60)));
    let Some(url) = raw.url else {
        c.err(
            "upstream.url",
            "is required (`http://host:port`, or `echo:` for the built-in echo app)",
        );
        return None;
    };
    let target = if url == "echo:" {
        UpstreamTarget::Echo
    } else {
        let parsed = Url::parse(&url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
        let Some(u) = parsed else {
            c.err(
                "upstream.url",
                format!("`{url}` is not `http://host:port`, `https://host:port` or `echo:`"),
            );
            return None;
        };
        if u.path() != "/" || u.query().is_some() {
            c.err(
                "upstream.url",
                "must not have a path or query: requests keep their own",
            );
        }
        let host = u
            .host_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = u.port_or_known_default().unwrap_or(80);
        let addr = c.addr(
            "upstream.url",
            &format!("{}:{port}", u.host_str().unwrap_or_default()),
        )?;
        UpstreamTarget::Http {
            addr,
            tls: u.scheme() == "https",
            host,
        }
    };
    Some(UpstreamSettings {
        target,
        connect_timeout,
        read_timeout,
    })
}

pub fn portal(c: &mut Checker, raw: raw::RawPortal) -> PortalSettings {
    let prefix = raw.prefix.unwrap_or_else(|| "/_auth".into());
    let ok = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'.'));
    if !ok {
        c.err("portal.prefix", format!("`{prefix}` must look like `/_auth`: a leading `/`, no trailing `/`, letters, digits, `_-./`"));
    }
    let logo_url = kept_if(
        c,
        "portal.logo_url",
        raw.logo_url,
        is_logo_url,
        "an `https://` URL or a path starting with `/`",
    );
    let accent_color = kept_if(
        c,
        "portal.accent_color",
        raw.accent_color,
        is_hex_color,
        "a colour written `#rgb` or `#rrggbb` (like `#4a5afc`)",
    );
    PortalSettings {
        prefix,
        title: raw.title.unwrap_or_else(|| "Gatehouse".into()),
        password_login: raw.password_login.unwrap_or(true),
        logo_url,
        accent_color: accent_color.map(|a| a.to_ascii_lowercase()),
    }
}

/// `value` when `ok` holds for it; else reported at `path` as not `what`.
fn kept_if(
    c: &mut Checker,
    path: &str,
    value: Option<String>,
    ok: fn(&str) -> bool,
    what: &str,
) -> Option<String> {
    let value = value?;
    if ok(&value) {
        Some(value)
    } else {
        c.err(path, format!("`{value}` must be {what}"));
        None
    }
}

/// An `https://` URL with a host, or a path on the page's host (`/…`, not
/// `//…` or `/\…`, which browsers read as another host). Nothing that could
/// leave the `src` attribute or run script.
fn is_logo_url(u: &str) -> bool {
    let plain = !u.is_empty()
        && u.chars().all(|c| {
            !c.is_control() && !c.is_whitespace() && !matches!(c, '"' | '\'' | '<' | '>' | '\\')
        });
    if !plain {
        return false;
    }
    if let Some(rest) = u.strip_prefix('/') {
        return !rest.starts_with('/');
    }
    Url::parse(u).is_ok_and(|url| url.scheme() == "https" && url.host().is_some())
}

/// `#rgb` or `#rrggbb`: it goes into the pages' CSS as is.
fn is_hex_color(a: &str) -> bool {
    a.strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `store.url`, defaulting to the embedded SQLite file.
pub fn store_url(c: &mut Checker, raw: raw::RawStore) -> String {
    let store_url = raw
        .url
        .unwrap_or_else(|| "sqlite://data/gatehouse.db".to_owned());
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| store_url.starts_with(p))
    {
        c.err(
            "store.url",
            format!("`{store_url}` must start with `sqlite://` or `postgres://`"),
        );
    }
    store_url
}

pub fn cache(c: &mut Checker, raw: raw::RawCache) -> CacheSettings {
    let cache = CacheSettings {
        ttl: c.duration("cache.ttl", raw.ttl.as_deref(), Duration::from_secs(300)),
        max_entries: raw.max_entries.unwrap_or(100_000),
    };
    if cache.max_entries == 0 {
        c.err("cache.max_entries", "must be at least 1");
    }
    cache
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logo_urls() {
        for ok in ["https://cdn.example.com/logo.svg", "/static/logo.png"] {
            assert!(is_logo_url(ok), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "http://example.com/logo.png",
            "data:image/svg+xml,<svg/>",
            "//evil.example/logo.png",
            "/\\evil.example/logo.png",
            "logo.png",
            "/a b.png",
            "/a\".png",
            "",
        ] {
            assert!(!is_logo_url(bad), "{bad}");
        }
    }

    #[test]
    fn accent_colours() {
        for ok in ["#4a5afc", "#FFF", "#000000"] {
            assert!(is_hex_color(ok), "{ok}");
        }
        for bad in ["4a5afc", "#4a5afcz", "#12345", "red", "#fff;}body{x", ""] {
            assert!(!is_hex_color(bad), "{bad}");
        }
    }
}
