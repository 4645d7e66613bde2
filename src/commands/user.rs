//! `gatehouse user …`: administer stored users through the same
//! [`Admin`] operations as the admin API and pages (config-file users are
//! read-only, but their sessions and second factor live in the store and
//! can be managed; one enabled administrator always remains). Every change
//! goes on the audit trail with the actor `cli`.

/// Who the audit trail names for changes made with the CLI.
pub const CLI_ACTOR: &str = "cli";

use crate::accounts::admin::{is_last_enabled_user, Admin, AdminError, UserPatch};
use crate::accounts::users::NewAccount;
use crate::audit::{action, AuditEvent, Outcome};
use crate::identity::UserKind;
use crate::settings::Config;
use crate::store::{unix_now, Store};
use clap::Subcommand;
use std::io::Read;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create a user; prints a generated password unless --password-stdin.
    Add {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Role (default: `admin` for the first enabled user, else `user`).
        #[arg(long)]
        role: Option<String>,
        /// `user` (a person) or `api` (a machine).
        #[arg(long = "type", default_value = "user")]
        kind: String,
        /// Read the password from stdin instead of generating one.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List stored users.
    List,
    /// Change a user's role.
    SetRole { username: String, role: String },
    /// Refuse a user's credentials from now on (every replica within a second).
    Disable {
        username: String,
        /// Even the last enabled user (which opens the setup page to anyone).
        #[arg(long)]
        force: bool,
    },
    /// Accept a disabled user again.
    Enable { username: String },
    /// Delete a user.
    Delete {
        username: String,
        /// Even the last enabled user (which opens the setup page to anyone).
        #[arg(long)]
        force: bool,
    },
    /// Set a user's password from stdin (their sessions and tokens end).
    SetPassword { username: String },
    /// Remove a user's second factor (lost device, no recovery code left);
    /// they sign in with the password alone again, or enrol anew if their
    /// role requires it.
    #[command(name = "reset-2fa")]
    ResetTwoFactor { username: String },
    /// List a user's usable sessions (when and where each started).
    Sessions { username: String },
    /// Sign a user out everywhere: every session ends, on every replica.
    Signout { username: String },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {msg}");
    ExitCode::from(1)
}

fn read_password() -> Result<String, String> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    let pw = input.trim_end_matches(['\n', '\r']).to_owned();
    if pw.is_empty() {
        return Err("empty password on stdin".into());
    }
    Ok(pw)
}

/// A readable random password (no look-alike characters).
pub fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn run(config: &Config, action: UserAction) -> ExitCode {
    super::with_store(config, |store| async move {
        let in_config = |name: &str| config.directory.user(name).is_some();
        let role_ok = |role: &str| config.directory.roles.contains(role);
        let admin = Admin {
            store: &store,
            directory: &config.directory,
            passwords: &config.passwords,
            actor: CLI_ACTOR,
            reach: None,
        };
        match action {
            UserAction::Add {
                username,
                email,
                name,
                role,
                kind,
                password_stdin,
            } => {
                let account = match NewAccount::new(&username, email.as_deref()) {
                    Ok(a) => a.display_name(name),
                    Err(e) => return fail(e),
                };
                let username = account.username().to_owned();
                if in_config(&username) {
                    return fail(format!(
                        "`{username}` is declared in the config file; a name lives in one place"
                    ));
                }
                let kind = match kind.as_str() {
                    "user" => UserKind::User,
                    "api" => UserKind::Api,
                    other => return fail(format!("--type `{other}` must be `user` or `api`")),
                };
                let role = match role {
                    Some(r) => r,
                    None => match store.count_enabled_users().await {
                        Ok(0) if config.directory.users.is_empty() => "admin".to_owned(),
                        Ok(_) => "user".to_owned(),
                        Err(e) => return fail(e),
                    },
                };
                if !role_ok(&role) {
                    return fail(format!("role `{role}` is not defined under `roles`"));
                }
                let (password, generated) = if password_stdin {
                    match read_password() {
                        Ok(p) => (p, false),
                        Err(e) => return fail(e),
                    }
                } else {
                    (random_password(), true)
                };
                let policy = &config.passwords;
                let new = match account
                    .kind(kind)
                    .role(&role)
                    .with_password(policy, &password)
                {
                    Ok(u) => u,
                    Err(e) => return fail(e),
                };
                match store.create_user(new).await {
                    Ok(user) => {
                        let event = AuditEvent::new(action::USER_CREATE, Outcome::Success)
                            .actor(CLI_ACTOR)
                            .target(&username)
                            .detail("role", role.clone())
                            .detail("type", user.record.kind.as_str());
                        audit_or_warn(&store, event).await;
                        println!("created {username} (role {role})");
                        if generated {
                            println!("password: {password}");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            UserAction::List => match store.list_users().await {
                Ok(users) => {
                    let stored = users.into_iter().map(|u| (u.record, false));
                    let declared = config.directory.users.values().map(|u| (u.clone(), true));
                    let mut rows = Vec::new();
                    for (r, read_only) in stored.chain(declared) {
                        // Config-file users' second factors live in the store too.
                        let two_factor = match store.second_factor(&r.username).await {
                            Ok(f) => f.is_some_and(|f| f.confirmed),
                            Err(e) => return fail(e),
                        };
                        rows.push((r, read_only, two_factor));
                    }
                    println!(
                        "{:<24} {:<5} {:<9} {:<12} {:<4} EMAIL",
                        "USERNAME", "TYPE", "STATUS", "ROLE", "2FA"
                    );
                    for (r, read_only, two_factor) in rows {
                        println!(
                            "{:<24} {:<5} {:<9} {:<12} {:<4} {}{}",
                            r.username,
                            r.kind.as_str(),
                            r.status.as_str(),
                            r.role,
                            if two_factor { "on" } else { "off" },
                            r.email.unwrap_or_default(),
                            if read_only {
                                " (config file, read-only)"
                            } else {
                                ""
                            }
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            UserAction::SetRole { username, role } => {
                let patch = UserPatch {
                    role: Some(role.clone()),
                    ..UserPatch::default()
                };
                let done = admin.update(&username, patch).await.map(|(_, e)| e);
                report(&store, done, format!("{username} now has role {role}")).await
            }
            UserAction::Disable { username, force } => {
                if let Some(refusal) = last_user_refusal(config, &store, &username, force).await {
                    return refusal;
                }
                let done = admin
                    .update(&username, status("disabled"))
                    .await
                    .map(|(_, e)| e);
                report(&store, done, format!("{username} disabled")).await
            }
            UserAction::Enable { username } => {
                let done = admin
                    .update(&username, status("enabled"))
                    .await
                    .map(|(_, e)| e);
                report(&store, done, format!("{username} enabled")).await
            }
            UserAction::Delete { username, force } => {
                if let Some(refusal) = last_user_refusal(config, &store, &username, force).await {
                    return refusal;
                }
                let done = admin.delete(&username).await.map(|(_, e)| e);
                report(&store, done, format!("{username} deleted")).await
            }
            UserAction::ResetTwoFactor { username } => {
                let done = admin.reset_two_factor(&username).await.map(|(_, e)| e);
                let ok = format!("two-factor authentication of {username} reset");
                report(&store, done, ok).await
            }
            UserAction::SetPassword { username } => {
                let password = match read_password() {
                    Ok(p) => p,
                    Err(e) => return fail(e),
                };
                let patch = UserPatch {
                    password: Some(password),
                    ..UserPatch::default()
                };
                let done = admin.update(&username, patch).await.map(|(_, e)| e);
                report(&store, done, format!("password of {username} changed")).await
            }
            UserAction::Sessions { username } => {
                let idle = config.session.idle_timeout.as_secs() as i64;
                match admin.sessions(&username, unix_now(), idle).await {
                    Ok((_, sessions)) => {
                        print_sessions(&sessions);
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            UserAction::Signout { username } => match admin.sign_out(&username).await {
                Ok((_, n, event)) => {
                    let ok = format!("{username} signed out of {n} session(s)");
                    report(&store, Ok(event), ok).await
                }
                Err(e) => fail(e),
            },
        }
    })
}

/// Refuse to disable or delete the last enabled user unless `force`: with
/// nobody enabled, the setup page lets anyone create an administrator.
async fn last_user_refusal(
    config: &Config,
    store: &Store,
    username: &str,
    force: bool,
) -> Option<ExitCode> {
    match is_last_enabled_user(&config.directory, store, username).await {
        Ok(false) => None,
        Ok(true) if force => {
            eprintln!(
                "gatehouse: warning: no enabled user remains; {}/setup is open to anyone until one is added",
                config.portal.prefix
            );
            None
        }
        Ok(true) => Some(fail(format!(
            "{username} is the last enabled user: without one, {}/setup opens and anyone who reaches it can create an administrator. Add or enable another user first, or pass --force",
            config.portal.prefix
        ))),
        Err(e) => Some(fail(e)),
    }
}

/// A change of status only.
fn status(status: &str) -> UserPatch {
    UserPatch {
        status: Some(status.to_owned()),
        ..UserPatch::default()
    }
}

/// Put `event` on the audit trail; a store that refuses it is reported, the
/// change stands.
pub(super) async fn audit_or_warn(store: &Store, event: AuditEvent) {
    if let Err(e) = crate::audit::write_now(store, event).await {
        eprintln!("gatehouse: done, but not written to the audit trail: {e}");
    }
}

/// Say what was done (and put it on the audit trail), or why not.
async fn report(store: &Store, done: Result<AuditEvent, AdminError>, ok: String) -> ExitCode {
    match done {
        Ok(event) => {
            audit_or_warn(store, event).await;
            println!("{ok}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}

fn print_sessions(sessions: &[crate::store::SessionRecord]) {
    let time = |t: i64| {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
        )
        .to_string()
    };
    println!(
        "{:<20} {:<20} {:<20} {:<39} {:<10} USER AGENT",
        "CREATED", "LAST SEEN", "EXPIRES", "IP", "SSO"
    );
    for r in sessions {
        println!(
            "{:<20} {:<20} {:<20} {:<39} {:<10} {}",
            time(r.created_at),
            time(r.last_seen_at),
            time(r.expires_at),
            r.ip.as_deref().unwrap_or("-"),
            r.sso.as_ref().map_or("-", |s| s.provider.as_str()),
            r.user_agent.as_deref().unwrap_or("-"),
        );
    }
}
