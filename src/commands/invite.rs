//! `gatehouse invite …`: invitations in the store (`create` mails the link
//! through the outbox, which a running Gatehouse delivers; `list`, `revoke`).

use super::user::CLI_ACTOR;
use crate::accounts::registration::{create_invitation, NewInvitation};
use crate::audit::{action, AuditEvent, Outcome};
use crate::settings::Config;
use crate::store::unix_now;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum InviteAction {
    /// Invite someone: a single-use link to register (even while registration
    /// is closed) with this role, mailed to them and printed here.
    Create {
        #[arg(long)]
        email: String,
        /// Default: `registration.default_role`.
        #[arg(long)]
        role: Option<String>,
        /// How long the link works (`7d`, `48h`); default `registration.invitation_ttl`.
        #[arg(long)]
        ttl: Option<String>,
    },
    /// Open invitations.
    List,
    /// Revoke an open invitation by its id.
    Revoke { id: String },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {msg}");
    ExitCode::from(1)
}

pub fn run(config: &Config, action: InviteAction) -> ExitCode {
    super::with_store(config, |store| async move {
        match action {
            InviteAction::Create { email, role, ttl } => {
                let ttl = match ttl.as_deref().map(crate::config::parse_duration) {
                    None => config.registration.invitation_ttl,
                    Some(Ok(d)) => d,
                    Some(Err(e)) => return fail(format!("--ttl: {e}")),
                };
                let role = role.unwrap_or_else(|| config.registration.default_role.clone());
                let mail = &config.mail_templates;
                let register_url = format!(
                    "{}{}/register",
                    config.public_url.as_str().trim_end_matches('/'),
                    config.portal.prefix
                );
                let asked = NewInvitation {
                    email: &email,
                    role: &role,
                    ttl,
                    created_by: CLI_ACTOR,
                };
                match create_invitation(&store, mail, &config.directory.roles, &register_url, asked)
                    .await
                {
                    Ok((token, link)) => {
                        let event = AuditEvent::new(action::INVITATION_CREATE, Outcome::Success)
                            .actor(CLI_ACTOR)
                            .detail("invitation", token.id.clone())
                            .detail("role", role.clone());
                        super::user::audit_or_warn(&store, event).await;
                        println!(
                            "invitation {} for {email} ({role}), until {}",
                            token.id,
                            humantime::format_rfc3339_seconds(
                                std::time::UNIX_EPOCH
                                    + std::time::Duration::from_secs(token.expires_at.max(0) as u64)
                            )
                        );
                        println!("link: {link}");
                        if config.smtp.is_none() {
                            eprintln!("note: `smtp` is not configured, so the mail waits in the outbox until it is");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            InviteAction::List => match store.invitations(unix_now()).await {
                Ok(list) => {
                    println!("{:<18} {:<32} {:<12} EXPIRES", "ID", "EMAIL", "ROLE");
                    for t in list {
                        let until = humantime::format_rfc3339_seconds(
                            std::time::UNIX_EPOCH
                                + std::time::Duration::from_secs(t.expires_at.max(0) as u64),
                        );
                        println!(
                            "{:<18} {:<32} {:<12} {until}",
                            t.id,
                            t.email.unwrap_or_default(),
                            t.role.unwrap_or_default()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            InviteAction::Revoke { id } => match store.revoke_invitation(&id, unix_now()).await {
                Ok(true) => {
                    let event = AuditEvent::new(action::INVITATION_REVOKE, Outcome::Success)
                        .actor(CLI_ACTOR)
                        .detail("invitation", id.clone());
                    super::user::audit_or_warn(&store, event).await;
                    println!("invitation {id} revoked");
                    ExitCode::SUCCESS
                }
                Ok(false) => fail(format!("no open invitation has id {id}")),
                Err(e) => fail(e),
            },
        }
    })
}
