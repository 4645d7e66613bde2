//! `gatehouse user …`: administer stored users (config-file users are
//! read-only, but their second factor lives in the store and can be reset).

use crate::accounts::users::{hash_new_password, NewAccount};
use crate::directory::UserStatus;
use crate::identity::UserKind;
use crate::settings::Config;
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
    Disable { username: String },
    /// Accept a disabled user again.
    Enable { username: String },
    /// Delete a user.
    Delete { username: String },
    /// Set a user's password from stdin (their sessions and tokens end).
    SetPassword { username: String },
    /// Remove a user's second factor (lost device, no recovery code left);
    /// they sign in with the password alone again, or enrol anew if their
    /// role requires it.
    #[command(name = "reset-2fa")]
    ResetTwoFactor { username: String },
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
                    Ok(_) => {
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
                    println!(
                        "{:<24} {:<5} {:<9} {:<12} EMAIL",
                        "USERNAME", "TYPE", "STATUS", "ROLE"
                    );
                    for u in users {
                        let r = u.record;
                        let status = if r.status == UserStatus::Enabled {
                            "enabled"
                        } else {
                            "disabled"
                        };
                        println!(
                            "{:<24} {:<5} {:<9} {:<12} {}",
                            r.username,
                            r.kind.as_str(),
                            status,
                            r.role,
                            r.email.unwrap_or_default()
                        );
                    }
                    for u in config.directory.users.values() {
                        println!(
                            "{:<24} {:<5} {:<9} {:<12} {} (config file, read-only)",
                            u.username,
                            u.kind.as_str(),
                            if u.status == UserStatus::Enabled {
                                "enabled"
                            } else {
                                "disabled"
                            },
                            u.role,
                            u.email.clone().unwrap_or_default()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            UserAction::SetRole { username, role } => {
                if !role_ok(&role) {
                    return fail(format!("role `{role}` is not defined under `roles`"));
                }
                done(
                    store.set_role(&username, &role).await,
                    &format!("{username} now has role {role}"),
                    &username,
                    config,
                )
            }
            UserAction::Disable { username } => done(
                store.set_status(&username, UserStatus::Disabled).await,
                &format!("{username} disabled"),
                &username,
                config,
            ),
            UserAction::Enable { username } => done(
                store.set_status(&username, UserStatus::Enabled).await,
                &format!("{username} enabled"),
                &username,
                config,
            ),
            UserAction::Delete { username } => done(
                store.delete_user(&username).await,
                &format!("{username} deleted"),
                &username,
                config,
            ),
            UserAction::ResetTwoFactor { username } => {
                match store.delete_second_factor(&username).await {
                    Ok(()) => {
                        println!("two-factor authentication of {username} reset");
                        ExitCode::SUCCESS
                    }
                    Err(crate::store::StoreError::NotFound(_)) => {
                        fail(format!("`{username}` has no second factor"))
                    }
                    Err(e) => fail(e),
                }
            }
            UserAction::SetPassword { username } => {
                let policy = &config.passwords;
                let hash = match read_password()
                    .and_then(|p| hash_new_password(policy, &p).map_err(|e| e.to_string()))
                {
                    Ok(h) => h,
                    Err(e) => return fail(e),
                };
                done(
                    store.set_password_hash(&username, &hash).await,
                    &format!("password of {username} changed"),
                    &username,
                    config,
                )
            }
        }
    })
}

fn done(
    result: Result<(), crate::store::StoreError>,
    ok: &str,
    username: &str,
    config: &Config,
) -> ExitCode {
    match result {
        Ok(()) => {
            println!("{ok}");
            ExitCode::SUCCESS
        }
        Err(crate::store::StoreError::NotFound(_)) if config.directory.user(username).is_some() => {
            fail(format!(
                "`{username}` is declared in the config file (read-only): change it there"
            ))
        }
        Err(e) => fail(e),
    }
}
