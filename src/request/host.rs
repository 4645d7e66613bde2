//! The host a request is for, as rules match it: lower case, without port
//! and without the trailing dot DNS ignores (`Admin.Example.com.:80` →
//! `admin.example.com`), so a spelling the app and DNS treat as the same
//! name cannot skip a host-keyed rule.

use std::borrow::Cow;

/// `Example.com.:8080` → `example.com`; `[::1]:80` → `[::1]`.
pub fn canonical_host(host: &str) -> Cow<'_, str> {
    let bare = if host.starts_with('[') {
        host.find(']').map_or(host, |end| &host[..=end])
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    let bare = bare.trim_end_matches('.');
    if bare.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(bare.to_ascii_lowercase())
    } else {
        Cow::Borrowed(bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_host() {
        for (raw, want) in [
            ("admin.example.com", "admin.example.com"),
            ("Admin.Example.COM", "admin.example.com"),
            ("admin.example.com.", "admin.example.com"),
            ("admin.example.com.:80", "admin.example.com"),
            ("admin.example.com:8443", "admin.example.com"),
            ("admin.example.com..", "admin.example.com"),
            ("[::1]:80", "[::1]"),
            ("[::1]", "[::1]"),
            ("", ""),
        ] {
            assert_eq!(canonical_host(raw), want, "{raw}");
        }
    }
}
