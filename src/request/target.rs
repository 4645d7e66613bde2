//! The request-target's form (RFC 9112 §3.2). Only origin-form (`/…`),
//! absolute-form (`http(s)://host/…`) and `*` (OPTIONS only) name something
//! Gatehouse can judge; anything else (`admin/x`, `;/admin`, `%2fadmin`,
//! `\admin`) some frameworks still route to a path, so it is refused (400)
//! rather than read as `/`.

use http::Method;

/// A request-target Gatehouse accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetForm<'a> {
    /// `/path?query`.
    Origin {
        path: &'a str,
        query: Option<&'a str>,
    },
    /// `http://authority/path?query`; `path` is `/` when the URL has none.
    Absolute {
        authority: &'a str,
        path: &'a str,
        query: Option<&'a str>,
    },
    /// `*`.
    Asterisk,
}

/// Why a request-target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request target must be a path starting with `/` or an http(s) URL")]
    Form,
    #[error("the request target `*` is only for OPTIONS")]
    Asterisk,
    #[error("the request target is not valid UTF-8")]
    Encoding,
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (s, None),
    }
}

/// Classify a request-target (or a URL given to `explain` or in a rewrite
/// header). A fragment, which a target never carries, is dropped.
pub fn classify_target(raw: &[u8]) -> Result<TargetForm<'_>, TargetError> {
    let raw = std::str::from_utf8(raw).map_err(|_| TargetError::Encoding)?;
    let raw = raw.split_once('#').map_or(raw, |(t, _)| t);
    if raw.starts_with('/') {
        let (path, query) = split_query(raw);
        return Ok(TargetForm::Origin { path, query });
    }
    if raw == "*" {
        return Ok(TargetForm::Asterisk);
    }
    let rest = ["http://", "https://"]
        .iter()
        .find_map(|scheme| {
            raw.get(..scheme.len())
                .filter(|s| s.eq_ignore_ascii_case(scheme))
                .map(|_| &raw[scheme.len()..])
        })
        .ok_or(TargetError::Form)?;
    let end = rest.find(['/', '?', '\\']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    if authority.is_empty() || tail.starts_with('\\') {
        return Err(TargetError::Form);
    }
    let (path, query) = split_query(tail);
    Ok(TargetForm::Absolute {
        authority,
        path: if path.is_empty() { "/" } else { path },
        query,
    })
}

/// The path part of a request's target, refusing forms a rule cannot judge:
/// `*` answers only OPTIONS.
pub fn request_path<'a>(method: &Method, raw: &'a [u8]) -> Result<&'a str, TargetError> {
    match classify_target(raw)? {
        TargetForm::Origin { path, .. } | TargetForm::Absolute { path, .. } => Ok(path),
        TargetForm::Asterisk if *method == Method::OPTIONS => Ok("*"),
        TargetForm::Asterisk => Err(TargetError::Asterisk),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        use TargetForm::*;
        let ok: [(&str, TargetForm); 6] = [
            (
                "/a?b=c",
                Origin {
                    path: "/a",
                    query: Some("b=c"),
                },
            ),
            (
                "//admin",
                Origin {
                    path: "//admin",
                    query: None,
                },
            ),
            (
                "/a#frag",
                Origin {
                    path: "/a",
                    query: None,
                },
            ),
            ("*", Asterisk),
            (
                "HTTP://h:8080/x?y",
                Absolute {
                    authority: "h:8080",
                    path: "/x",
                    query: Some("y"),
                },
            ),
            (
                "https://h",
                Absolute {
                    authority: "h",
                    path: "/",
                    query: None,
                },
            ),
        ];
        for (raw, want) in ok {
            assert_eq!(classify_target(raw.as_bytes()), Ok(want), "{raw}");
        }
        for raw in [
            "admin/x",
            ";/admin/x",
            "%2fadmin/x",
            "\\admin\\x",
            "",
            "ftp://h/x",
            "http://",
            "http:///x",
            "http://h\\admin",
            "h:80",
            "?a",
        ] {
            assert_eq!(
                classify_target(raw.as_bytes()),
                Err(TargetError::Form),
                "{raw}"
            );
        }
        assert_eq!(classify_target(b"/\xff"), Err(TargetError::Encoding));
    }

    #[test]
    fn asterisk_is_only_for_options() {
        assert_eq!(request_path(&Method::OPTIONS, b"*"), Ok("*"));
        assert_eq!(request_path(&Method::GET, b"*"), Err(TargetError::Asterisk));
        assert_eq!(request_path(&Method::GET, b"http://h/p?q"), Ok("/p"));
    }
}
