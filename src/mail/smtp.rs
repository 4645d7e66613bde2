//! Talking to the SMTP server: the lettre transport for the settings, a
//! mail built as `multipart/alternative` (text and HTML), and SMTP errors
//! told in words a person can act on (cannot connect, TLS, login, refused).

use super::{parse_mailbox, Mail, MailError, Mailbox, Security, SmtpSettings};
use lettre::message::{MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

/// How long one SMTP exchange may take.
pub(super) const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) type Transport = AsyncSmtpTransport<Tokio1Executor>;

/// The transport for `s`: STARTTLS required, TLS from the start, or none;
/// certificates checked against the Web PKI roots.
pub(super) fn transport(s: &SmtpSettings) -> Result<Transport, MailError> {
    let tls_setup = |e: lettre::transport::smtp::Error| {
        MailError::Smtp(format!("TLS setup for {} failed: {e}", s.describe()))
    };
    let builder = match s.security {
        Security::StartTls => Transport::starttls_relay(&s.host).map_err(tls_setup)?,
        Security::Tls => Transport::relay(&s.host).map_err(tls_setup)?,
        Security::None => Transport::builder_dangerous(&s.host),
    };
    let builder = builder.port(s.port).timeout(Some(SMTP_TIMEOUT));
    let builder = match (&s.username, &s.password) {
        (Some(user), Some(password)) => {
            builder.credentials(Credentials::new(user.clone(), password.clone()))
        }
        _ => builder,
    };
    Ok(builder.build())
}

/// The message: `From` the settings, `To` the recipient, text and (when
/// there is one) HTML as alternatives.
pub(super) fn message(
    from: &Mailbox,
    to: &str,
    subject: &str,
    text: &str,
    html: Option<&str>,
) -> Result<Message, MailError> {
    let builder = Message::builder()
        .from(from.clone())
        .to(parse_mailbox(to)?)
        .subject(subject);
    let built = match html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(
            text.to_owned(),
            html.to_owned(),
        )),
        None => builder.singlepart(SinglePart::plain(text.to_owned())),
    };
    built.map_err(|e| MailError::Message(e.to_string()))
}

/// An SMTP failure in words: what went wrong, where, and lettre's account.
pub(super) fn describe(e: &lettre::transport::smtp::Error, s: &SmtpSettings) -> String {
    let said = e.to_string();
    let code = e.status().map(|c| c.to_string()).unwrap_or_default();
    let lower = said.to_ascii_lowercase();
    let what = if e.is_tls() || lower.contains("starttls") {
        "TLS failed with"
    } else if matches!(code.as_str(), "530" | "534" | "535" | "538")
        || lower.contains("authentication")
    {
        "login refused by"
    } else if e.is_permanent() || e.is_transient() {
        "mail refused by"
    } else if e.is_timeout() {
        "no answer in time from"
    } else if e.is_response() {
        "unexpected answer from"
    } else {
        "cannot connect to"
    };
    format!("{what} {}: {said}", s.describe())
}

/// Send `mail` to `to` right away, not through the outbox (`gatehouse mail
/// test`).
pub async fn send_now(settings: &SmtpSettings, to: &str, mail: &Mail) -> Result<(), MailError> {
    let message = message(
        &settings.from,
        to,
        &mail.subject,
        &mail.text,
        mail.html.as_deref(),
    )?;
    transport(settings)?
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| MailError::Smtp(describe(&e, settings)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mail_with_html_is_multipart_alternative() {
        let from = parse_mailbox("Example App <no-reply@example.com>").unwrap();
        let m = message(
            &from,
            "bob@example.com",
            "Hi",
            "plain body",
            Some("<p>html</p>"),
        )
        .unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("From: \"Example App\" <no-reply@example.com>"),
            "{raw}"
        );
        assert!(raw.contains("To: bob@example.com"), "{raw}");
        assert!(
            raw.contains("plain body") && raw.contains("<p>html</p>"),
            "{raw}"
        );
        assert!(matches!(
            message(&from, "nobody", "Hi", "x", None),
            Err(MailError::Address(..))
        ));
    }
}
