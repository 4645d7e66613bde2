//! `gatehouse apikey …`: API keys in the store (`create`, `list`, `revoke`),
//! and `generate` for keys declared in the config file.

use super::user::CLI_ACTOR;
use crate::accounts::api_keys::{check_api_key, create_api_key, NewApiKey};
use crate::audit::{action, AuditEvent, Outcome};
use crate::settings::Config;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ApikeyAction {
    /// Print a new random key and the `sha256:` hash to put under `api_keys`.
    Generate,
    /// Create a stored key acting as a user; the key is printed once.
    Create {
        /// The user the key acts as (stored or declared in the config).
        #[arg(long)]
        user: String,
        /// A label for lists and logs.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Narrow the key to these of the user's permissions (comma-separated).
        #[arg(long, value_delimiter = ',')]
        permissions: Option<Vec<String>>,
        /// Lifetime (`30d`, `12h`); default: until revoked.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List live stored keys (never the keys themselves).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a stored key by id (every replica within a second).
    Revoke { id: i64 },
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("gatehouse: {msg}");
    ExitCode::from(1)
}

/// `generate` (no config needed).
pub fn generate() -> ExitCode {
    let key = crate::authn::generate_api_key();
    println!("key:  {key}");
    println!("hash: {}", crate::authn::api_key_hash(&key));
    eprintln!("Put the hash under `api_keys` in the config; the key is shown only now.");
    ExitCode::SUCCESS
}

pub fn run(config: &Config, action: ApikeyAction) -> ExitCode {
    super::with_store(config, |store| async move {
        match action {
            ApikeyAction::Generate => generate(),
            ApikeyAction::Create {
                user,
                name,
                permissions,
                expires_in,
            } => {
                let role = match config.directory.user(&user) {
                    Some(u) => u.role.clone(),
                    None => match store.user(&user).await {
                        Ok(Some(u)) => u.record.role,
                        Ok(None) => return fail(format!("no such user `{user}`")),
                        Err(e) => return fail(e),
                    },
                };
                // The rule of `api/me/api-keys`: a key holds at most what its
                // user's role grants.
                let held = config.directory.roles.permissions(&role);
                if let Err(e) = check_api_key(&name, permissions.as_deref(), Some(&held)) {
                    return fail(e);
                }
                let expires_at = match expires_in.as_deref().map(crate::config::parse_duration) {
                    None => None,
                    Some(Ok(d)) => Some(crate::store::unix_now() + d.as_secs() as i64),
                    Some(Err(e)) => return fail(format!("--expires-in: {e}")),
                };
                let new = NewApiKey {
                    name: &name,
                    owner: &user,
                    permissions: permissions.as_deref(),
                    within: Some(&held),
                    expires_at,
                };
                match create_api_key(&store, new).await {
                    Ok(created) => {
                        let event = AuditEvent::new(action::API_KEY_CREATE, Outcome::Success)
                            .actor(CLI_ACTOR)
                            .target(&user)
                            .detail("key_id", created.stored.id)
                            .detail("name", name.clone());
                        super::user::audit_or_warn(&store, event).await;
                        println!("{}", created.key);
                        eprintln!(
                            "API key {} (`{name}`, acting as {user}) created; the key is shown only now.",
                            created.stored.id
                        );
                        ExitCode::SUCCESS
                    }
                    Err(e) => fail(e),
                }
            }
            ApikeyAction::List { user } => match store.list_api_keys(user.as_deref()).await {
                Ok(keys) => {
                    println!(
                        "{:<6} {:<20} {:<20} {:<24} EXPIRES",
                        "ID", "NAME", "USER", "PERMISSIONS"
                    );
                    for k in keys {
                        let perms = k
                            .permissions
                            .map_or("(the user's)".to_owned(), |p| p.join(","));
                        let expires = k.expires_at.map_or("never".to_owned(), |t| {
                            humantime::format_rfc3339_seconds(
                                std::time::UNIX_EPOCH
                                    + std::time::Duration::from_secs(t.max(0) as u64),
                            )
                            .to_string()
                        });
                        println!(
                            "{:<6} {:<20} {:<20} {:<24} {expires}",
                            k.id, k.name, k.username, perms
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
            ApikeyAction::Revoke { id } => match store.revoke_api_key(id, None).await {
                Ok(_) => {
                    let event = AuditEvent::new(action::API_KEY_REVOKE, Outcome::Success)
                        .actor(CLI_ACTOR)
                        .detail("key_id", id);
                    super::user::audit_or_warn(&store, event).await;
                    println!("API key {id} revoked");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            },
        }
    })
}
