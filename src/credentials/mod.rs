//! Credential extraction: what a request *claims*, parsed but not verified.
//!
//! Reads `Authorization` (Basic, Bearer) and `X-API-Key`, and returns them in
//! the order the contract tries them. Malformed input is a typed
//! [`CredentialError`]; nothing here looks at users or keys.

use base64::Engine;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName};

/// Prefix every Gatehouse API key carries.
pub const API_KEY_PREFIX: &str = "gh_";

/// The `X-API-Key` header.
pub static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Largest credential header accepted (bytes).
pub const MAX_CREDENTIAL_LEN: usize = 8 * 1024;

/// Which request header carried a credential (so it can be removed upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Authorization,
    ApiKeyHeader,
    SessionCookie,
}

/// `Authorization: Basic`.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredential {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for BasicCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicCredential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// An API key from `X-API-Key` or `Authorization: Bearer`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyCredential {
    pub key: String,
    pub source: CredentialSource,
}

impl std::fmt::Debug for ApiKeyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeyCredential({:?})", self.source)
    }
}

/// A bearer token that is not an API key (a JWT).
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(pub String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// The session cookie's value (a random id).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCookie(pub String);

impl std::fmt::Debug for SessionCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookie(<redacted>)")
    }
}

/// One presented credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(SessionCookie),
    Basic(BasicCredential),
    ApiKey(ApiKeyCredential),
    Bearer(BearerToken),
}

impl Credential {
    pub fn source(&self) -> CredentialSource {
        match self {
            Credential::Session(_) => CredentialSource::SessionCookie,
            Credential::Basic(_) | Credential::Bearer(_) => CredentialSource::Authorization,
            Credential::ApiKey(k) => k.source,
        }
    }
}

/// Why the credential headers could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("more than one {0} header")]
    Duplicate(&'static str),
    #[error("the {0} header is longer than 8 KiB")]
    TooLarge(&'static str),
    #[error("the {0} header is empty")]
    Empty(&'static str),
    #[error("the {0} header has bytes outside visible ASCII")]
    NotAscii(&'static str),
    #[error("the Authorization scheme `{0}` is not supported (use Basic or Bearer)")]
    UnsupportedScheme(String),
    #[error("the Basic credential is not valid base64")]
    BadBase64,
    #[error("the Basic credential is not UTF-8")]
    NotUtf8,
    #[error("the Basic credential has no `:` between user and password")]
    MissingColon,
    #[error("the Basic credential has an empty user name")]
    EmptyUsername,
}

impl CredentialError {
    /// Syntax errors answer 400; an unsupported scheme is merely "no credential
    /// we understand" and answers 401.
    pub fn is_malformed(&self) -> bool {
        !matches!(self, CredentialError::UnsupportedScheme(_))
    }
}

/// The single value of `name`, checked for size and visible ASCII.
fn single<'h>(
    headers: &'h HeaderMap,
    name: &HeaderName,
    label: &'static str,
) -> Result<Option<&'h str>, CredentialError> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(CredentialError::Duplicate(label));
    }
    if first.len() > MAX_CREDENTIAL_LEN {
        return Err(CredentialError::TooLarge(label));
    }
    let text = first
        .to_str()
        .map_err(|_| CredentialError::NotAscii(label))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CredentialError::Empty(label));
    }
    Ok(Some(text))
}

fn parse_authorization(value: &str) -> Result<Credential, CredentialError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic") {
        if rest.is_empty() {
            return Err(CredentialError::Empty("Authorization"));
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .map_err(|_| CredentialError::BadBase64)?;
        let text = String::from_utf8(decoded).map_err(|_| CredentialError::NotUtf8)?;
        let (user, pass) = text.split_once(':').ok_or(CredentialError::MissingColon)?;
        if user.is_empty() {
            return Err(CredentialError::EmptyUsername);
        }
        return Ok(Credential::Basic(BasicCredential {
            username: user.to_owned(),
            password: pass.to_owned(),
        }));
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        if rest.is_empty() {
            return Err(CredentialError::Empty("Authorization"));
        }
        if rest.starts_with(API_KEY_PREFIX) {
            return Ok(Credential::ApiKey(ApiKeyCredential {
                key: rest.to_owned(),
                source: CredentialSource::Authorization,
            }));
        }
        return Ok(Credential::Bearer(BearerToken(rest.to_owned())));
    }
    Err(CredentialError::UnsupportedScheme(
        scheme.chars().take(32).collect(),
    ))
}

/// Values of cookie `name` in every `Cookie` header, in order.
pub fn cookie_values<'h>(
    headers: &'h HeaderMap,
    name: &'h str,
) -> impl Iterator<Item = &'h str> + 'h {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let value = pair
                .trim_ascii_start()
                .strip_prefix(name)?
                .strip_prefix('=')?;
            Some(value.trim_ascii_end().trim_matches('"'))
        })
}

/// The credentials a request presents, in the order they are tried: the
/// session cookie, Basic, then API key (`Authorization: Bearer gh_…`, then
/// `X-API-Key`), then other bearer tokens.
pub fn extract(headers: &HeaderMap, cookie_name: &str) -> Result<Vec<Credential>, CredentialError> {
    let authorization = single(headers, &AUTHORIZATION, "Authorization")?
        .map(parse_authorization)
        .transpose()?;
    let api_key = single(headers, &X_API_KEY, "X-API-Key")?.map(|k| {
        Credential::ApiKey(ApiKeyCredential {
            key: k.to_owned(),
            source: CredentialSource::ApiKeyHeader,
        })
    });
    let mut out = Vec::with_capacity(2);
    out.extend(
        cookie_values(headers, cookie_name)
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(|v| Credential::Session(SessionCookie(v.to_owned()))),
    );
    match authorization {
        Some(bearer @ Credential::Bearer(_)) => {
            out.extend(api_key);
            out.push(bearer);
        }
        Some(other) => {
            out.push(other);
            out.extend(api_key);
        }
        None => out.extend(api_key),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn extract_t(h: &HeaderMap) -> Result<Vec<Credential>, CredentialError> {
        extract(h, "gatehouse_session")
    }

    #[test]
    fn session_cookie_comes_first() {
        let got = extract_t(&headers(&[
            ("authorization", b"Bearer gh_k"),
            ("cookie", b"a=1; gatehouse_session=abc; b=2"),
        ]))
        .unwrap();
        assert_eq!(got[0], Credential::Session(SessionCookie("abc".into())));
        assert!(matches!(got[1], Credential::ApiKey(_)));
        assert_eq!(
            extract_t(&headers(&[("cookie", b"gatehouse_sessionx=1; other=2")])).unwrap(),
            vec![]
        );
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn parses_basic_and_keys_in_order() {
        let basic = format!("Basic {}", b64(b"alice:pa:ss"));
        let got = extract_t(&headers(&[
            ("authorization", basic.as_bytes()),
            ("x-api-key", b"gh_k"),
        ]))
        .unwrap();
        assert_eq!(
            got,
            vec![
                Credential::Basic(BasicCredential {
                    username: "alice".into(),
                    password: "pa:ss".into()
                }),
                Credential::ApiKey(ApiKeyCredential {
                    key: "gh_k".into(),
                    source: CredentialSource::ApiKeyHeader
                }),
            ]
        );
        let got = extract_t(&headers(&[("authorization", b"bearer gh_abc")])).unwrap();
        assert_eq!(
            got,
            vec![Credential::ApiKey(ApiKeyCredential {
                key: "gh_abc".into(),
                source: CredentialSource::Authorization
            })]
        );
        let got = extract_t(&headers(&[
            ("authorization", b"Bearer eyJ.x.y"),
            ("x-api-key", b"gh_k"),
        ]))
        .unwrap();
        assert!(matches!(got[0], Credential::ApiKey(_)) && matches!(got[1], Credential::Bearer(_)));
        assert!(extract_t(&HeaderMap::new()).unwrap().is_empty());
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        use CredentialError::*;
        let huge = format!("Basic {}", "A".repeat(MAX_CREDENTIAL_LEN));
        let nonutf8 = format!("Basic {}", b64(&[0xff, 0xfe, b':', b'x']));
        let nocolon = format!("Basic {}", b64(b"alice"));
        let nouser = format!("Basic {}", b64(b":pw"));
        type Case<'a> = (Vec<(&'a str, &'a [u8])>, CredentialError);
        let cases: Vec<Case> = vec![
            (vec![("authorization", b"Basic !!!notbase64")], BadBase64),
            (vec![("authorization", nocolon.as_bytes())], MissingColon),
            (vec![("authorization", nonutf8.as_bytes())], NotUtf8),
            (vec![("authorization", nouser.as_bytes())], EmptyUsername),
            (vec![("authorization", b"Basic")], Empty("Authorization")),
            (vec![("authorization", b"Basic   ")], Empty("Authorization")),
            (vec![("authorization", b"")], Empty("Authorization")),
            (vec![("authorization", b"Bearer ")], Empty("Authorization")),
            (
                vec![("authorization", huge.as_bytes())],
                TooLarge("Authorization"),
            ),
            (
                vec![("authorization", b"Basic \xc3\xa9")],
                NotAscii("Authorization"),
            ),
            (
                vec![
                    ("authorization", b"Basic YTpi"),
                    ("authorization", b"Basic YTpi"),
                ],
                Duplicate("Authorization"),
            ),
            (
                vec![("x-api-key", b"gh_a"), ("x-api-key", b"gh_b")],
                Duplicate("X-API-Key"),
            ),
            (vec![("x-api-key", b"")], Empty("X-API-Key")),
            (
                vec![("authorization", b"Digest x=1")],
                UnsupportedScheme("Digest".into()),
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(extract_t(&headers(&pairs)), Err(want.clone()), "{want}");
        }
        assert!(!UnsupportedScheme("x".into()).is_malformed());
        assert!(BadBase64.is_malformed());
    }
}
