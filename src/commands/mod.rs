//! The command line: parsing and one function per subcommand.

mod apikey;
mod audit;
mod demo;
mod explain;
mod healthcheck;
mod invite;
mod mail;
mod user;

use crate::settings::Config;
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

/// Gatehouse: an authentication proxy for any web app.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run on built-in defaults in front of the echo app, with a generated admin login.
    Demo {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Address to serve Prometheus metrics on (`/metrics`); by default
        /// the next port after `--listen`'s (127.0.0.1:8081).
        #[arg(long)]
        metrics_listen: Option<String>,
    },
    /// Run from a configuration file.
    Serve {
        #[arg(short, long, env = "GATEHOUSE_CONFIG")]
        config: PathBuf,
    },
    /// Validate a configuration file; print every error with its key path and line (or variable).
    CheckConfig {
        #[arg(short, long, env = "GATEHOUSE_CONFIG")]
        config: PathBuf,
    },
    /// Read a password from stdin, print its argon2id PHC hash.
    HashPassword,
    /// GET a URL once (no shell or curl needed): exit 0 on a 2xx answer, else 1 with the reason.
    Healthcheck {
        #[arg(long, default_value = healthcheck::DEFAULT_URL)]
        url: String,
    },
    /// Administer stored users.
    User {
        /// The config file naming the store (required; may follow the action).
        #[arg(short, long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: user::UserAction,
    },
    /// API keys: stored ones (create, list, revoke) and config-file ones (generate).
    Apikey {
        /// The config file naming the store (not needed for `generate`).
        #[arg(short, long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: apikey::ApikeyAction,
    },
    /// Invitations: a single-use link to register, mailed (`create`), `list`, `revoke`.
    Invite {
        /// The config file naming the store.
        #[arg(short, long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: invite::InviteAction,
    },
    /// Print the audit trail (sign-ins, changes, admin actions), newest first.
    Audit {
        /// The config file naming the store.
        #[arg(short, long, env = "GATEHOUSE_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        args: audit::AuditArgs,
    },
    /// Mail: `test` sends one through the configured SMTP server.
    Mail {
        /// The config file naming the SMTP server (required; may follow the action).
        #[arg(short, long, env = "GATEHOUSE_CONFIG", global = true)]
        config: Option<PathBuf>,
        #[command(subcommand)]
        action: mail::MailAction,
    },
    /// Token signing keys for `tokens.keys`.
    SigningKey {
        #[command(subcommand)]
        action: SigningKeyAction,
    },
    /// Policy dry-run: how a request is read, which rules match, and what the server answers.
    Explain {
        #[arg(short, long, env = "GATEHOUSE_CONFIG")]
        config: PathBuf,
        #[arg(long, default_value = "GET")]
        method: String,
        /// A path (`/a?b`, sent to `public_url`'s host) or an http(s) URL.
        #[arg(long)]
        url: String,
        /// Decide as this user, of the config file or the store (default: anonymous).
        #[arg(long)]
        user: Option<String>,
        /// A request header (`'X-HTTP-Method-Override: DELETE'`); repeatable.
        #[arg(long = "header", short = 'H')]
        headers: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeyAction {
    /// Print a new Ed25519 private key (PKCS#8 PEM) for `tokens.keys[].private_key_file`.
    Generate,
}

/// Structured logs on stderr; `RUST_LOG` adjusts, `GATEHOUSE_LOG_FORMAT=json` for JSON lines.
/// Coloured only when stderr is a terminal (never in a file, a pipe or journald).
pub fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,pingora_core=warn,pingora_proxy=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if std::env::var("GATEHOUSE_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = result {
        eprintln!("gatehouse: logging not initialised: {e}");
    }
}

/// Open the configured store on a small runtime and run `f` with it.
fn with_store<F, Fut>(config: &Config, f: F) -> ExitCode
where
    F: FnOnce(crate::store::Store) -> Fut,
    Fut: std::future::Future<Output = ExitCode>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match crate::store::Store::open(&config.store_url).await {
            Ok(store) => f(store).await,
            Err(e) => {
                eprintln!("gatehouse: store.url: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|errors| {
        eprint!("{errors}");
        eprintln!("{}: {} error(s)", path.display(), errors.0.len());
        ExitCode::from(1)
    })
}

fn serve(config: Config, path: Option<PathBuf>) -> ExitCode {
    match crate::server::run(config, path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::from(1)
        }
    }
}

/// Run one command.
pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Demo {
            listen,
            metrics_listen,
        } => demo::run(&listen, metrics_listen.as_deref()),
        Command::Serve { config } => {
            init_logging();
            match load(&config) {
                Ok(c) => serve(c, Some(config)),
                Err(code) => code,
            }
        }
        Command::CheckConfig { config } => match load(&config) {
            Ok(_) => {
                println!("{}: OK", config.display());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::HashPassword => hash_password(),
        Command::Healthcheck { url } => healthcheck::run(&url),
        Command::User { config, action } => {
            let Some(config) = config else {
                eprintln!("gatehouse: name the config file with -c FILE (or GATEHOUSE_CONFIG)");
                return ExitCode::from(2);
            };
            match load(&config) {
                Ok(c) => user::run(&c, action),
                Err(code) => code,
            }
        }
        Command::Apikey {
            action: apikey::ApikeyAction::Generate,
            ..
        } => apikey::generate(),
        Command::Apikey { config, action } => {
            let Some(config) = config else {
                eprintln!("gatehouse: name the config file with -c FILE (or GATEHOUSE_CONFIG)");
                return ExitCode::from(2);
            };
            match load(&config) {
                Ok(c) => apikey::run(&c, action),
                Err(code) => code,
            }
        }
        Command::Invite { config, action } => {
            let Some(config) = config else {
                eprintln!("gatehouse: name the config file with -c FILE (or GATEHOUSE_CONFIG)");
                return ExitCode::from(2);
            };
            match load(&config) {
                Ok(c) => invite::run(&c, action),
                Err(code) => code,
            }
        }
        Command::Audit { config, args } => {
            let Some(config) = config else {
                eprintln!("gatehouse: name the config file with -c FILE (or GATEHOUSE_CONFIG)");
                return ExitCode::from(2);
            };
            match load(&config) {
                Ok(c) => audit::run(&c, args),
                Err(code) => code,
            }
        }
        Command::Mail { config, action } => {
            let Some(config) = config else {
                eprintln!("gatehouse: name the config file with -c FILE (or GATEHOUSE_CONFIG)");
                return ExitCode::from(2);
            };
            match load(&config) {
                Ok(c) => mail::run(&c, action),
                Err(code) => code,
            }
        }
        Command::SigningKey {
            action: SigningKeyAction::Generate,
        } => match crate::tokens::KeyMaterial::generate() {
            Ok((kid, pem)) => {
                print!("{pem}");
                eprintln!("Save this to a file readable only by Gatehouse and list it under `tokens.keys` (suggested kid: {kid}).");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("gatehouse: {e}");
                ExitCode::from(1)
            }
        },
        Command::Explain {
            config,
            method,
            url,
            user,
            headers,
        } => match load(&config) {
            Ok(c) => explain::run(&c, &method, &url, user.as_deref(), &headers),
            Err(code) => code,
        },
    }
}

fn hash_password() -> ExitCode {
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("gatehouse: cannot read stdin: {e}");
        return ExitCode::from(1);
    }
    let password = input.strip_suffix('\n').unwrap_or(&input);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        eprintln!("gatehouse: empty password (pipe it on stdin: `echo -n secret | gatehouse hash-password`)");
        return ExitCode::from(1);
    }
    match crate::authn::password::hash_password(password) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatehouse: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
