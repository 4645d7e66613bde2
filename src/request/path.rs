//! Request paths, read the ways apps read them.
//!
//! The canonical reading decodes percent-encoding once, reads `\` as `/`
//! and merges `//`. Dot segments (`.`, `..`) are refused outright — literal,
//! encoded, encoded twice, or hidden behind path parameters (`..;x`) —
//! since browsers never send them and an app resolving them differently
//! from the policy is the classic path-confusion bypass.
//!
//! Apps disagree on two more things, so those paths get further readings:
//! - path parameters: Tomcat, Jetty and Spring drop `;…` from each segment
//!   (`/admin;x` is `/admin` to them), others keep it;
//! - an encoded slash or a backslash: `%2F` splits a segment for some (WSGI,
//!   Go's `URL.Path`) and stays inside it for others (Express routes raw
//!   paths); `\` is `/` on Windows servers and an ordinary character on
//!   most others.

use percent_encoding::percent_decode_str;
use std::borrow::Cow;

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must start with `/`")]
    NotAbsolute,
    #[error("the path contains a `.` or `..` segment")]
    DotSegment,
    #[error("the path contains a NUL or control character")]
    ControlCharacter,
    #[error("the path's percent-encoding is not UTF-8")]
    Encoding,
    #[error("the path contains `;`, which paths.allow_semicolons refuses")]
    Semicolon,
}

/// What `;` in a path means (`paths.allow_semicolons`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Semicolons {
    /// Allowed, and the path is judged both with and without its parameters.
    #[default]
    JudgeBoth,
    /// Refused (400).
    Refuse,
}

/// A path's readings: the canonical one, and others when apps may differ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathReading<'a> {
    pub canonical: Cow<'a, str>,
    pub others: Vec<String>,
}

impl<'a> PathReading<'a> {
    pub fn into_parts(self) -> (Cow<'a, str>, Vec<String>) {
        (self.canonical, self.others)
    }
}

fn is_dot(segment: &str) -> bool {
    segment == "." || segment == ".."
}

/// A segment without its path parameters (`admin;x=1` → `admin`).
fn without_params(segment: &str) -> &str {
    segment.split_once(';').map_or(segment, |(s, _)| s)
}

/// Refuse a dot segment, also one that is a dot segment once its
/// parameters are gone.
fn check_segments(path: &str) -> Result<(), PathError> {
    if path
        .split(['/', '\\'])
        .any(|seg| is_dot(seg) || is_dot(without_params(seg)))
    {
        return Err(PathError::DotSegment);
    }
    Ok(())
}

fn merge_slashes(path: &str) -> Cow<'_, str> {
    if !path.contains("//") {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    let mut prev_slash = false;
    for c in path.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    Cow::Owned(out)
}

/// How one reading treats the two ambiguous separators.
#[derive(Debug, Clone, Copy)]
struct Separators {
    /// `%2F` and `%5C` are decoded (else kept, inside their segment).
    decode_encoded: bool,
    /// `\` separates segments (else it is an ordinary character).
    backslash: bool,
}

const CANONICAL: Separators = Separators {
    decode_encoded: true,
    backslash: true,
};

/// Decode once; unless `decode_encoded`, leave `%2F` and `%5C` encoded.
fn decode(raw: &str, decode_encoded: bool) -> Result<Cow<'_, str>, PathError> {
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes: Vec<u8> = if decode_encoded {
        percent_decode_str(raw).collect()
    } else {
        let mut out = Vec::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(i) = rest.find('%') {
            let (head, tail) = rest.split_at(i);
            out.extend(percent_decode_str(head));
            if has_encoded_slash(tail.get(..3).unwrap_or("")) {
                out.extend_from_slice(&tail.as_bytes()[..3]);
                rest = &tail[3..];
            } else {
                out.push(b'%');
                rest = &tail[1..];
            }
        }
        out.extend(percent_decode_str(rest));
        out
    };
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| PathError::Encoding)
}

/// One reading: decoded, separators as `how` says, slashes merged.
fn one_reading(raw: &str, how: Separators) -> Result<Cow<'_, str>, PathError> {
    let decoded = decode(raw, how.decode_encoded)?;
    if decoded.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    let unified = if how.backslash && decoded.contains('\\') {
        Cow::Owned(decoded.replace('\\', "/"))
    } else {
        decoded
    };
    Ok(match merge_slashes(&unified) {
        Cow::Borrowed(_) => unified,
        Cow::Owned(merged) => Cow::Owned(merged),
    })
}

/// Every segment without its parameters (`/a;x/b;y` → `/a/b`), slashes
/// merged again (`/a/;x/b` → `/a/b`).
fn strip_params(path: &str) -> String {
    let joined: Vec<&str> = path.split('/').map(without_params).collect();
    merge_slashes(&joined.join("/")).into_owned()
}

/// Does `raw` hold `%2F` or `%5C` (any case)?
fn has_encoded_slash(raw: &str) -> bool {
    raw.as_bytes().windows(3).any(|w| {
        w[0] == b'%' && (w[1] == b'2' && w[2] | 0x20 == b'f' || w[1] == b'5' && w[2] | 0x20 == b'c')
    })
}

/// Read `raw` (a path as received: no query, not yet decoded).
pub fn read_path(raw: &str, semicolons: Semicolons) -> Result<PathReading<'_>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let canonical = one_reading(raw, CANONICAL)?;
    check_segments(&canonical)?;
    let has_percent = raw.contains('%');
    if has_percent {
        // An app that decodes twice must not find a dot segment either.
        let twice: Vec<u8> = percent_decode_str(&canonical).collect();
        check_segments(&String::from_utf8_lossy(&twice))?;
    }
    let has_params = canonical.contains(';');
    if has_params && semicolons == Semicolons::Refuse {
        return Err(PathError::Semicolon);
    }
    let encoded_slash = has_percent && has_encoded_slash(raw);
    let backslash = raw.contains('\\') || encoded_slash;
    let mut others: Vec<String> = Vec::new();
    if !(has_params || backslash) {
        return Ok(PathReading { canonical, others });
    }
    // Every combination of the ambiguous choices an app could make.
    for decode_encoded in [true, false] {
        for splits in [true, false] {
            if (!decode_encoded && !encoded_slash) || (!splits && !backslash) {
                continue;
            }
            let how = Separators {
                decode_encoded,
                backslash: splits,
            };
            let reading = one_reading(raw, how)?.into_owned();
            let stripped = reading.contains(';').then(|| strip_params(&reading));
            for p in std::iter::once(reading).chain(stripped) {
                if p != canonical && !others.contains(&p) {
                    others.push(p);
                }
            }
        }
    }
    Ok(PathReading { canonical, others })
}

/// The canonical reading alone (what logs and `explain` show first).
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    read_path(raw, Semicolons::JudgeBoth).map(|r| r.canonical)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_table() {
        let ok = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("//admin", "/admin"),
            ("/a///b/", "/a/b/"),
            ("/%61dmin", "/admin"),
            ("/admin%2Fx", "/admin/x"),
            ("/a\\b", "/a/b"),
            ("/\\admin", "/admin"),
            ("/caf%C3%A9", "/café"),
            ("/a..b/.c", "/a..b/.c"),
            ("/a;b", "/a;b"),
        ];
        for (raw, want) in ok {
            assert_eq!(normalize_path(raw).as_deref(), Ok(want), "{raw}");
        }
        let bad = [
            ("a", PathError::NotAbsolute),
            ("/public/../admin", PathError::DotSegment),
            ("/public/%2e%2e/admin", PathError::DotSegment),
            ("/public/%2E./admin", PathError::DotSegment),
            ("/public%2f..%2fadmin", PathError::DotSegment),
            ("/public\\..\\admin", PathError::DotSegment),
            ("/./x", PathError::DotSegment),
            ("/x/..", PathError::DotSegment),
            ("/public/..;/admin", PathError::DotSegment),
            ("/public/%2e%2e;/admin", PathError::DotSegment),
            ("/public/..;jsessionid=1/admin", PathError::DotSegment),
            ("/public/.;x/admin", PathError::DotSegment),
            ("/public/%252e%252e/admin", PathError::DotSegment),
            ("/public/%252e%252e%252fadmin", PathError::DotSegment),
            ("/public/..%3b/admin", PathError::DotSegment),
            ("/a%00b", PathError::ControlCharacter),
            ("/a%0d%0ab", PathError::ControlCharacter),
            ("/%c0%ae%c0%ae/admin", PathError::Encoding),
            ("/a%ff", PathError::Encoding),
        ];
        for (raw, want) in bad {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
    }

    fn readings(raw: &str) -> Vec<String> {
        let r = read_path(raw, Semicolons::JudgeBoth).unwrap();
        std::iter::once(r.canonical.into_owned())
            .chain(r.others)
            .collect()
    }

    #[test]
    fn ambiguous_paths_are_read_every_way() {
        assert_eq!(readings("/admin"), ["/admin"]);
        assert_eq!(readings("/admin;x"), ["/admin;x", "/admin"]);
        assert_eq!(readings("/a;p=1/b;q"), ["/a;p=1/b;q", "/a/b"]);
        assert_eq!(readings("/a/;x/b"), ["/a/;x/b", "/a/b"]);
        assert_eq!(readings("/admin%3bx"), ["/admin;x", "/admin"]);
        assert_eq!(readings("/admin/a%2Fb"), ["/admin/a/b", "/admin/a%2Fb"]);
        assert_eq!(readings("/p%5cq"), ["/p/q", "/p\\q", "/p%5cq"]);
        assert_eq!(readings("/\\"), ["/", "/\\"]);
        assert_eq!(readings("/a\\b"), ["/a/b", "/a\\b"]);
        assert_eq!(
            readings("/x;y/a%2fb"),
            ["/x;y/a/b", "/x/a/b", "/x;y/a%2fb", "/x/a%2fb"]
        );
    }

    #[test]
    fn semicolons_can_be_refused() {
        assert_eq!(
            read_path("/admin;x", Semicolons::Refuse),
            Err(PathError::Semicolon)
        );
        assert_eq!(
            read_path("/admin%3Bx", Semicolons::Refuse),
            Err(PathError::Semicolon)
        );
        assert!(read_path("/admin", Semicolons::Refuse).is_ok());
    }
}
