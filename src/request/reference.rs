//! Two reference readings of a path, as two families of servers resolve it,
//! for the differential property that tests and fuzz targets check:
//! whatever the gate allows for an identity, every reading here allows too.
//!
//! - [`rfc3986`]: a generic resolver: decode percent-encoded unreserved
//!   characters (RFC 3986 §6.2.2.2), remove dot segments (§5.2.4), decode
//!   the rest, merge `//`;
//! - [`tomcat`]: a servlet container: drop `;…` from each raw segment,
//!   decode (refusing `%2F`, `%5C` and `\`, as Tomcat does by default),
//!   remove dot segments, merge `//`.
//!
//! `None` means the server would refuse the path itself.

use percent_encoding::percent_decode_str;

fn remove_dot_segments(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path.split('/').skip(1).collect();
    for (i, seg) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        match *seg {
            "." => {
                if last {
                    out.push("");
                }
            }
            ".." => {
                out.pop();
                if last {
                    out.push("");
                }
            }
            s => out.push(s),
        }
    }
    format!("/{}", out.join("/"))
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn decode_unreserved(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(b as char);
                rest = &rest[i + 3..];
            }
            _ => {
                out.push('%');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The path a generic RFC 3986 server routes on.
pub fn rfc3986(raw: &str) -> Option<String> {
    if !raw.starts_with('/') {
        return None;
    }
    let resolved = remove_dot_segments(&decode_unreserved(raw));
    let decoded = String::from_utf8(percent_decode_str(&resolved).collect()).ok()?;
    Some(merge_slashes(&decoded))
}

/// The path a servlet container routes on.
pub fn tomcat(raw: &str) -> Option<String> {
    if !raw.starts_with('/') || raw.contains('\\') {
        return None;
    }
    let stripped: Vec<&str> = raw
        .split('/')
        .map(|seg| seg.split_once(';').map_or(seg, |(s, _)| s))
        .collect();
    let stripped = stripped.join("/");
    let lower = stripped.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") {
        return None;
    }
    let decoded = String::from_utf8(percent_decode_str(&stripped).collect()).ok()?;
    if decoded.contains('\\') || decoded.bytes().any(|b| b < 0x20) {
        return None;
    }
    Some(remove_dot_segments(&merge_slashes(&decoded)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_readings() {
        assert_eq!(rfc3986("/a/%2e%2e/b").as_deref(), Some("/b"));
        assert_eq!(rfc3986("/a/./b/../c").as_deref(), Some("/a/c"));
        assert_eq!(tomcat("/public/..;/admin/x").as_deref(), Some("/admin/x"));
        assert_eq!(tomcat("/admin;x").as_deref(), Some("/admin"));
        assert_eq!(tomcat("/a%2fb"), None);
    }
}
