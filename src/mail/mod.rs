//! Mail: the SMTP settings ([`SmtpSettings`]), the templates a mail is
//! rendered from ([`MailTemplates`], built in and overridable per file), and
//! delivery, through `lettre` over tokio and rustls: [`send_now`] for
//! `gatehouse mail test`, the [`Sender`] task for everything else.
//!
//! Nothing is sent from a request: a mail is rendered ([`MailTemplates::render`]),
//! turned into the store's plain [`OutgoingMail`] ([`Mail::to_outgoing`]) and
//! written to the outbox in the same transaction as the token its link
//! carries. The [`Sender`] of each replica claims due mail from the outbox,
//! sends it, marks it sent, and on failure tries again with exponential
//! backoff (at most a minute apart), so mail survives an SMTP outage and a
//! restart, and two replicas never send the same mail.

mod sender;
mod smtp;
mod templates;

pub use lettre::message::Mailbox;
pub use sender::{backoff, Sender};
pub use smtp::send_now;
pub use templates::{MailTemplates, TEMPLATES};

use crate::store::{OutgoingMail, StoreError};
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// How the connection to the SMTP server is protected (`smtp.security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain connection upgraded with STARTTLS, which the server must offer
    /// (port 587 by default).
    StartTls,
    /// TLS from the first byte (port 465 by default).
    Tls,
    /// No encryption: only for a server on a loopback address (port 25 by default).
    None,
}

impl Security {
    pub fn parse(s: &str) -> Option<Security> {
        match s {
            "starttls" => Some(Security::StartTls),
            "tls" => Some(Security::Tls),
            "none" => Some(Security::None),
            _ => None,
        }
    }

    /// The usual port for this kind of connection.
    pub fn default_port(self) -> u16 {
        match self {
            Security::StartTls => 587,
            Security::Tls => 465,
            Security::None => 25,
        }
    }
}

impl fmt::Display for Security {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Security::StartTls => "starttls",
            Security::Tls => "tls",
            Security::None => "none",
        })
    }
}

/// `smtp:` checked: where and how mail is sent.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    /// Login, when the server wants one (with `password`).
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` of every mail.
    pub from: Mailbox,
    /// Where overrides of the built-in templates live, if anywhere.
    pub templates_dir: Option<PathBuf>,
}

impl fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(hidden)"))
            .field("from", &self.from.to_string())
            .field("templates_dir", &self.templates_dir)
            .finish()
    }
}

impl SmtpSettings {
    /// `host:port with STARTTLS`, for messages.
    pub fn describe(&self) -> String {
        let how = match self.security {
            Security::StartTls => "with STARTTLS",
            Security::Tls => "with TLS",
            Security::None => "without TLS",
        };
        format!("{}:{} {how}", self.host, self.port)
    }

    /// Can a connection be set up from these settings (a host that is a
    /// valid TLS server name)? Nothing is sent.
    pub fn check_transport(&self) -> Result<(), MailError> {
        smtp::transport(self).map(|_| ())
    }
}

/// Is `host` certainly this machine (`localhost`, `127.0.0.0/8`, `::1`)?
/// Names are not resolved: only these spellings count.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A mail address, optionally with a name: `a@example.com` or
/// `Example App <no-reply@example.com>`.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, MailError> {
    s.trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::Address(s.to_owned(), e.to_string()))
}

/// A rendered mail, not yet addressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// One line.
    pub subject: String,
    pub text: String,
    /// The HTML alternative.
    pub html: Option<String>,
}

impl Mail {
    /// The mail to `to`, as the outbox keeps it.
    pub fn to_outgoing(&self, to: &str) -> OutgoingMail {
        OutgoingMail {
            to: to.to_owned(),
            subject: self.subject.clone(),
            text: self.text.clone(),
            html: self.html.clone(),
        }
    }
}

/// Why a mail could not be rendered or sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("no mail template `{0}` (known: {known})", known = TEMPLATES.join(", "))]
    UnknownTemplate(String),
    #[error("mail template `{file}`: {message}")]
    Template { file: String, message: String },
    #[error("`{0}` is not a mail address: {1}")]
    Address(String, String),
    #[error("cannot build the mail: {0}")]
    Message(String),
    #[error("{0}")]
    Smtp(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_without_resolving() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "a.localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in [
            "smtp.example.com",
            "10.0.0.1",
            "0.0.0.0",
            "localhost.example.com",
            "::",
        ] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn mailboxes_with_and_without_names_parse() {
        let m = parse_mailbox("Example App <no-reply@example.com>").unwrap();
        assert_eq!(m.email.to_string(), "no-reply@example.com");
        assert_eq!(m.name.as_deref(), Some("Example App"));
        assert!(parse_mailbox("no-reply@example.com").is_ok());
        assert!(matches!(
            parse_mailbox("not an address"),
            Err(MailError::Address(..))
        ));
        assert!(parse_mailbox("").is_err());
    }

    #[test]
    fn debug_output_hides_the_password() {
        let s = SmtpSettings {
            host: "smtp.example.com".into(),
            port: 587,
            security: Security::StartTls,
            username: Some("gatehouse".into()),
            password: Some("s3cret".into()),
            from: parse_mailbox("a@example.com").unwrap(),
            templates_dir: None,
        };
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cret") && shown.contains("(hidden)"),
            "{shown}"
        );
    }
}
