//! `smtp:`: the SMTP server, checked into [`SmtpSettings`], and the mail
//! templates (built in, with `smtp.templates_dir`'s overrides).

use crate::config::raw;
use crate::config::Checker;
use crate::mail::{self, MailTemplates, Security, SmtpSettings};
use std::path::PathBuf;

/// The SMTP settings (none when the section is absent or wrong, with the
/// errors reported) and the templates (none only when they are wrong).
pub(super) fn smtp(
    c: &mut Checker,
    raw: Option<raw::RawSmtp>,
    title: &str,
) -> (Option<SmtpSettings>, Option<MailTemplates>) {
    let Some(raw) = raw else {
        return (None, templates(c, None, title));
    };
    let templates_dir = raw
        .templates_dir
        .filter(|d| !d.is_empty())
        .map(PathBuf::from);
    let templates = templates(c, templates_dir.clone(), title);

    let host = match raw.host.as_deref().map(str::trim) {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) => Some(h.to_owned()),
        Some(h) => {
            c.err("smtp.host", format!("`{h}` is not a host name or address"));
            None
        }
        None => {
            c.err("smtp.host", "required: the SMTP server's name or address");
            None
        }
    };
    let security = match raw.security.as_deref() {
        None => Some(Security::StartTls),
        Some(s) => Security::parse(s).or_else(|| {
            c.err(
                "smtp.security",
                format!("`{s}` must be `starttls`, `tls` or `none`"),
            );
            None
        }),
    };
    if let (Some(Security::None), Some(h)) = (security, &host) {
        if !mail::is_loopback_host(h) {
            c.err(
                "smtp.security",
                format!("`none` sends logins and links in clear text, so only to a loopback host (localhost, 127.0.0.1, ::1), not `{h}`: use `starttls` or `tls`"),
            );
        }
    }
    let port = match raw.port {
        Some(0) => {
            c.err("smtp.port", "must be 1-65535");
            None
        }
        Some(p) => Some(p),
        None => security.map(Security::default_port),
    };
    let username = raw.username.filter(|u| !u.is_empty());
    let password = raw.password.filter(|p| !p.is_empty());
    match (&username, &password) {
        (Some(_), None) => c.err(
            "smtp.username",
            "set `password` (or `password_file`) too, or neither",
        ),
        (None, Some(_)) => c.err("smtp.password", "set `username` too, or neither"),
        _ => {}
    }
    let from = match raw.from.as_deref() {
        None => {
            c.err(
                "smtp.from",
                "required: the sender of every mail, e.g. `Example App <no-reply@example.com>`",
            );
            None
        }
        Some(f) => match mail::parse_mailbox(f) {
            Ok(m) => Some(m),
            Err(e) => {
                c.err(
                    "smtp.from",
                    format!("{e} (write `no-reply@example.com` or `Example App <no-reply@example.com>`)"),
                );
                None
            }
        },
    };
    let (Some(host), Some(port), Some(security), Some(from)) = (host, port, security, from) else {
        return (None, templates);
    };
    let settings = SmtpSettings {
        host,
        port,
        security,
        username,
        password,
        from,
        templates_dir,
    };
    if let Err(e) = settings.check_transport() {
        c.err("smtp.host", e.to_string());
        return (None, templates);
    }
    (Some(settings), templates)
}

fn templates(c: &mut Checker, dir: Option<PathBuf>, title: &str) -> Option<MailTemplates> {
    if let Some(d) = &dir {
        if !d.is_dir() {
            c.err(
                "smtp.templates_dir",
                format!("`{}` is not a directory", d.display()),
            );
            return None;
        }
    }
    MailTemplates::load(dir.as_deref(), title)
        .map_err(|e| c.err("smtp.templates_dir", e.to_string()))
        .ok()
}
