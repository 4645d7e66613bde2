//! Mail against a real SMTP server (aiosmtpd, see `common/smtp.rs`):
//! `gatehouse mail test`, and the outbox, which keeps mail through an SMTP
//! outage and a Gatehouse restart and, with two replicas on one PostgreSQL
//! database, sends each mail exactly once.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::*;
use gatehouse::store::{OutboxEntry, OutgoingMail, Store};
use smtp::*;
use std::time::{Duration, Instant};

/// `smtp:` for a sink on `port`, plus `extra` keys.
fn smtp_section(port: u16, extra: &str) -> String {
    format!(
        "smtp:\n  host: 127.0.0.1\n  port: {port}\n  security: none\n  from: \"Gatehouse Test <gatehouse@example.test>\"\n{extra}"
    )
}

fn cli_config(dir: &tempfile::TempDir, smtp: &str) -> String {
    let path = dir.path().join("gatehouse.yaml");
    std::fs::write(&path, format!("upstream:\n  url: \"echo:\"\n{smtp}")).unwrap();
    path.display().to_string()
}

/// Poll until `check` holds, for up to `secs` (the outbox backs off up to a
/// minute between tries, longer than `eventually` waits).
fn within(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} never happened within {secs} s");
}

/// The outbox through the library, as another process would use it.
struct Outbox {
    rt: tokio::runtime::Runtime,
    store: Store,
}

impl Outbox {
    fn open(url: &str) -> Outbox {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt.block_on(Store::open(url)).unwrap();
        Outbox { rt, store }
    }

    fn enqueue(&self, to: &str, subject: &str) -> i64 {
        let mail = OutgoingMail {
            to: to.into(),
            subject: subject.into(),
            text: format!("The text of {subject}."),
            html: Some(format!("<p>The HTML of <b>{subject}</b>.</p>")),
        };
        self.rt.block_on(self.store.enqueue_mail(&mail)).unwrap()
    }

    fn entry(&self, id: i64) -> OutboxEntry {
        self.rt
            .block_on(self.store.outbox_entry(id))
            .unwrap()
            .unwrap()
    }
}

#[test]
fn mail_test_delivers_through_the_server_and_fails_clearly_without_it() {
    let Some(python_path) =
        smtp_or_skip("mail_test_delivers_through_the_server_and_fails_clearly_without_it")
    else {
        return;
    };
    let mut sink = SmtpSink::start(&python_path);
    let dir = tempfile::tempdir().unwrap();
    let config = cli_config(&dir, &smtp_section(sink.port, ""));

    let (code, out, err) = gatehouse_cmd(
        &[
            "mail",
            "test",
            "--to",
            "Alice <alice@example.test>",
            "-c",
            &config,
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out.trim(),
        format!(
            "sent a test mail to Alice <alice@example.test> through 127.0.0.1:{} without TLS",
            sink.port
        )
    );
    eventually("the test mail arrives", || sink.mails().len() == 1);
    let got = &sink.mails()[0];
    assert_eq!(got.to, "Alice <alice@example.test>");
    assert_eq!(got.from, "Gatehouse Test <gatehouse@example.test>");
    assert_eq!(got.subject, "Test mail from Gatehouse");
    assert!(
        got.text.contains("This is a test mail from Gatehouse."),
        "{}",
        got.text
    );
    let html = got.html.as_deref().expect("an HTML alternative");
    assert!(
        html.contains("<p>This is a test mail from Gatehouse."),
        "{html}"
    );

    // STARTTLS required, and this server offers none: refused, not sent in clear.
    let tls_dir = tempfile::tempdir().unwrap();
    let tls = cli_config(
        &tls_dir,
        &smtp_section(sink.port, "").replace("security: none", "security: starttls"),
    );
    let (code, out, err) = gatehouse_cmd(
        &["mail", "test", "--to", "a@example.test", "-c", &tls],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("TLS failed with 127.0.0.1"), "{err}");
    assert!(err.contains("STARTTLS"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    sink.stop();
    let (code, out, err) = gatehouse_cmd(
        &["mail", "test", "--to", "a@example.test", "-c", &config],
        None,
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.starts_with(&format!(
            "gatehouse: test mail not sent: cannot connect to 127.0.0.1:{} without TLS",
            sink.port
        )),
        "{err}"
    );
    assert!(err.to_lowercase().contains("connection refused"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(sink.mails().len(), 1, "nothing more arrived");
}

#[test]
fn mail_test_needs_smtp_and_a_valid_address() {
    let dir = tempfile::tempdir().unwrap();
    let without = cli_config(&dir, "");
    let (code, _, err) = gatehouse_cmd(
        &["mail", "test", "--to", "a@example.test", "-c", &without],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("mail is not configured: add an `smtp` section"),
        "{err}"
    );

    let other = tempfile::tempdir().unwrap();
    let with = cli_config(&other, &smtp_section(1, ""));
    let (code, _, err) = gatehouse_cmd(
        &["mail", "test", "--to", "not-an-address", "-c", &with],
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("--to: `not-an-address` is not a mail address"),
        "{err}"
    );
}

#[test]
fn the_outbox_keeps_mail_through_an_smtp_outage_and_a_restart() {
    let Some(python_path) =
        smtp_or_skip("the_outbox_keeps_mail_through_an_smtp_outage_and_a_restart")
    else {
        return;
    };
    let mut sink = SmtpSink::stopped(&python_path);
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/gatehouse.db", data.path().display());
    let yaml = store_yaml(&url, &smtp_section(sink.port, ""));
    let outbox = Outbox::open(&url);

    let first = Gatehouse::start(&yaml);
    let a = outbox.enqueue("Alice <alice@example.test>", "Mail A");
    within(30, "a first failed try of mail A", || {
        outbox.entry(a).attempts >= 1
    });
    let entry = outbox.entry(a);
    assert_eq!(entry.sent_at, None);
    let error = entry.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with(&format!(
            "cannot connect to 127.0.0.1:{} without TLS",
            sink.port
        )),
        "{error}"
    );
    assert!(
        entry.next_attempt_at > entry.created_at,
        "backed off: {entry:?}"
    );

    // Gatehouse goes down while SMTP is still down; more mail is queued.
    first.stop();
    eventually("the first Gatehouse is gone", || !first.alive());
    let b = outbox.enqueue("bob@example.test", "Mail B");
    let second = Gatehouse::start(&yaml);
    within(
        30,
        "a failed try of mail B by the restarted Gatehouse",
        || outbox.entry(b).attempts >= 1,
    );
    assert!(sink.mails().is_empty());

    sink.restart();
    within(90, "both mails arrive once SMTP is back", || {
        sink.mails().len() >= 2
    });
    std::thread::sleep(Duration::from_secs(3));
    let mut got: Vec<(String, String)> = sink
        .mails()
        .into_iter()
        .map(|m| (m.subject, m.to))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("Mail A".to_owned(), "Alice <alice@example.test>".to_owned()),
            ("Mail B".to_owned(), "bob@example.test".to_owned()),
        ],
        "each mail exactly once"
    );
    let mail_a = sink
        .mails()
        .into_iter()
        .find(|m| m.subject == "Mail A")
        .unwrap();
    assert_eq!(mail_a.text.trim(), "The text of Mail A.");
    assert_eq!(
        mail_a.html.as_deref().map(str::trim),
        Some("<p>The HTML of <b>Mail A</b>.</p>")
    );
    for id in [a, b] {
        let e = outbox.entry(id);
        assert!(e.sent_at.is_some() && e.claimed_until.is_none(), "{e:?}");
    }
    second.stop();
}

#[test]
fn two_replicas_on_postgres_send_each_mail_once() {
    let Some(python_path) = smtp_or_skip("two_replicas_on_postgres_send_each_mail_once") else {
        return;
    };
    let Some(url) = postgres_or_skip("two_replicas_on_postgres_send_each_mail_once") else {
        return;
    };
    let sink = SmtpSink::start(&python_path);
    let yaml = store_yaml(&url, &smtp_section(sink.port, ""));
    let one = Gatehouse::start(&yaml);
    let two = Gatehouse::start(&yaml);
    let outbox = Outbox::open(&url);
    let ids: Vec<i64> = (0..20)
        .map(|i| outbox.enqueue(&format!("user{i}@example.test"), &format!("Mail {i}")))
        .collect();
    within(60, "20 mails arrive", || sink.mails().len() >= 20);
    std::thread::sleep(Duration::from_secs(3));
    let mut subjects: Vec<String> = sink.mails().into_iter().map(|m| m.subject).collect();
    subjects.sort();
    let mut expected: Vec<String> = (0..20).map(|i| format!("Mail {i}")).collect();
    expected.sort();
    assert_eq!(subjects, expected, "each mail exactly once");
    for id in ids {
        assert!(outbox.entry(id).sent_at.is_some());
    }
    one.stop();
    two.stop();
}
