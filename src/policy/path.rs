//! Request-path normalization, so rules see the path the app will act on.
//!
//! Percent-encoding is decoded and repeated slashes merged before matching.
//! Dot segments (`.`/`..`, literal or encoded) are refused outright: browsers
//! never send them, and an app resolving them differently from the policy is
//! the classic path-confusion bypass.

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
}

/// The path the policy matches against (query already removed).
pub fn normalize_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded: Cow<'_, str> = if raw.contains('%') {
        percent_decode_str(raw).decode_utf8_lossy()
    } else {
        Cow::Borrowed(raw)
    };
    if decoded.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    let unified: Cow<'_, str> = if decoded.contains('\\') {
        Cow::Owned(decoded.replace('\\', "/"))
    } else {
        decoded
    };
    if unified.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(PathError::DotSegment);
    }
    if !unified.contains("//") {
        return Ok(unified);
    }
    let mut out = String::with_capacity(unified.len());
    let mut prev_slash = false;
    for c in unified.chars() {
        if c == '/' && prev_slash {
            continue;
        }
        prev_slash = c == '/';
        out.push(c);
    }
    Ok(Cow::Owned(out))
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
            ("/caf%C3%A9", "/café"),
            ("/a..b/.c", "/a..b/.c"),
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
            ("/a%00b", PathError::ControlCharacter),
        ];
        for (raw, want) in bad {
            assert_eq!(normalize_path(raw), Err(want), "{raw}");
        }
    }
}
