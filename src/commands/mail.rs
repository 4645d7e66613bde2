//! `gatehouse mail …`: `test` sends the `test` mail straight through the
//! configured SMTP server (not through the outbox) and says how it went.

use crate::mail::{parse_mailbox, send_now};
use crate::settings::Config;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// Send one test mail now through the configured SMTP server.
    Test {
        /// The recipient.
        #[arg(long)]
        to: String,
    },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {msg}");
    ExitCode::from(1)
}

pub fn run(config: &Config, action: MailAction) -> ExitCode {
    let MailAction::Test { to } = action;
    let Some(smtp) = &config.smtp else {
        return fail("mail is not configured: add an `smtp` section to the config file");
    };
    if let Err(e) = parse_mailbox(&to) {
        return fail(format!("--to: {e}"));
    }
    let mail = match config.mail_templates.render("test", &serde_json::json!({})) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(e),
    };
    match runtime.block_on(send_now(smtp, &to, &mail)) {
        Ok(()) => {
            println!("sent a test mail to {to} through {}", smtp.describe());
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("test mail not sent: {e}")),
    }
}
