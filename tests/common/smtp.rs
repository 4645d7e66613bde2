//! A real SMTP server for tests: aiosmtpd (PyPI) with its `Mailbox`
//! handler, which writes every mail it accepts to a Maildir, read back here
//! with Python's `email` package (multipart, encoded words and transfer
//! encodings decoded as a mail client would).
//!
//! `GATEHOUSE_TEST_SMTP` names a directory to put on `PYTHONPATH` that holds
//! aiosmtpd (`python3 -m pip install --target DIR aiosmtpd`; `.ci/run` does
//! this); without it the tests print `SKIP`. Include with
//! `#[path = "common/smtp.rs"] mod smtp;` beside `mod common;`.
#![allow(dead_code)]

use std::io::Read;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Names the `PYTHONPATH` directory that holds aiosmtpd.
pub const SMTP_ENV: &str = "GATEHOUSE_TEST_SMTP";

/// The `PYTHONPATH` for aiosmtpd, or `None` after printing the SKIP line.
pub fn smtp_or_skip(test: &str) -> Option<String> {
    match std::env::var(SMTP_ENV) {
        Ok(dir) => Some(dir),
        Err(_) => {
            println!(
                "SKIP {test}: GATEHOUSE_TEST_SMTP is not set (a PYTHONPATH directory holding aiosmtpd: \
                 `python3 -m pip install --target DIR aiosmtpd`), so no real SMTP server ran"
            );
            None
        }
    }
}

/// One mail the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// aiosmtpd on a loopback port, writing to a Maildir of its own.
pub struct SmtpSink {
    pub port: u16,
    python_path: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

const READ_MAILDIR: &str = r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
box = mailbox.Maildir(sys.argv[1], factory=None, create=False)
out = []
for key in sorted(box.keys()):
    with box.get_file(key) as f:
        msg = BytesParser(policy=policy.default).parse(f)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    out.append({
        "from": str(msg["From"] or ""),
        "to": str(msg["To"] or ""),
        "subject": str(msg["Subject"] or ""),
        "text": text.get_content() if text is not None else "",
        "html": html.get_content() if html is not None else None,
    })
print(json.dumps(out))
"#;

impl SmtpSink {
    /// A sink on a fresh port, running.
    pub fn start(python_path: &str) -> SmtpSink {
        let mut sink = SmtpSink::stopped(python_path);
        sink.restart();
        sink
    }

    /// A sink with its port and Maildir chosen, not running yet: connections
    /// to `port` are refused until [`SmtpSink::restart`].
    pub fn stopped(python_path: &str) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(dir.path().join("Maildir").join(sub)).unwrap();
        }
        SmtpSink {
            port: crate::common::free_port(),
            python_path: python_path.to_owned(),
            dir,
            child: None,
        }
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("Maildir")
    }

    /// (Re)start on the same port and Maildir, and wait for its greeting.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::File::create(self.dir.path().join("aiosmtpd.log")).unwrap();
        let mut cmd = Command::new("python3");
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{}", self.port))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(self.maildir())
            .env("PYTHONPATH", &self.python_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().expect("start python3 -m aiosmtpd"));
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("aiosmtpd exited ({status}): {}", self.log());
            }
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                let mut greeting = [0u8; 3];
                if s.read_exact(&mut greeting).is_ok() && &greeting == b"220" {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "aiosmtpd on port {} did not answer: {}",
            self.port,
            self.log()
        );
    }

    /// Stop it (its port refuses connections again); the Maildir stays.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    /// What aiosmtpd printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("aiosmtpd.log")).unwrap_or_default()
    }

    /// Every mail accepted so far, oldest first.
    pub fn mails(&self) -> Vec<ReceivedMail> {
        let out = Command::new("python3")
            .args(["-c", READ_MAILDIR])
            .arg(self.maildir())
            .output()
            .expect("run python3");
        assert!(
            out.status.success(),
            "reading the Maildir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| ReceivedMail {
                from: s(m, "from"),
                to: s(m, "to"),
                subject: s(m, "subject"),
                text: s(m, "text"),
                html: m["html"].as_str().map(str::to_owned),
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}
