//! `gatehouse demo`: the embedded default (`config/demo.yaml`: SQLite under
//! `./data`, the echo app) with an admin created, and its password printed,
//! on first start, plus an API key generated for this run. A copy of the
//! configuration with absolute paths (`data/demo.yaml`) is what the printed
//! hints name, so the CLI reaches the demo's store from any directory.

use super::user::random_password;
use crate::accounts::users::NewAccount;
use crate::authn::{api_key_hash, generate_api_key};
use crate::settings::Config;
use crate::store::Store;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;

const DEMO_YAML: &str = include_str!("../../config/demo.yaml");

/// Creates the admin when the store has no enabled user; returns its password.
async fn first_admin(config: &Config) -> Result<Option<String>, String> {
    let store = Store::open(&config.store_url)
        .await
        .map_err(|e| e.to_string())?;
    if store
        .count_enabled_users()
        .await
        .map_err(|e| e.to_string())?
        > 0
    {
        return Ok(None);
    }
    let password = random_password();
    let admin = NewAccount::new("admin", Some("admin@example.test"))
        .and_then(|a| {
            a.display_name(Some("Demo Admin".into()))
                .role("admin")
                .with_password(&config.passwords, &password)
        })
        .map_err(|e| e.to_string())?;
    store.create_user(admin).await.map_err(|e| e.to_string())?;
    Ok(Some(password))
}

/// The demo's two-factor encryption key: `data/two-factor.key`, made on
/// first start (owner-only) and kept, so enrolments survive restarts.
fn two_factor_key_file() -> Result<std::path::PathBuf, String> {
    use base64::Engine;
    use rand::RngCore;
    use std::io::Write;
    let path = std::path::PathBuf::from("data/two-factor.key");
    if path.exists() {
        return Ok(path);
    }
    std::fs::create_dir_all("data").map_err(|e| format!("cannot create data/: {e}"))?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let key = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&path)
        .and_then(|mut f| f.write_all(key.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// `text` as a double-quoted YAML scalar.
fn yaml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `listen`'s host with the port after `port` (its own, already checked):
/// the demo's metrics beside its proxy.
fn port_after(listen: &str, port: u16) -> String {
    let host = listen.rsplit_once(':').map_or(listen, |(host, _)| host);
    format!("{host}:{}", port.saturating_add(1))
}

/// The demo's configuration with absolute paths (store, two-factor key),
/// written to `data/demo.yaml` for the CLI; answers the text and where it is.
fn config_copy(key_file: &std::path::Path) -> Result<(String, std::path::PathBuf), String> {
    let data = std::env::current_dir()
        .map_err(|e| format!("cannot tell the current directory: {e}"))?
        .join("data");
    let store = format!("sqlite://{}", data.join("gatehouse.db").display());
    let relative = "url: \"sqlite://data/gatehouse.db\"";
    if !DEMO_YAML.contains(relative) {
        return Err("the embedded demo configuration names no store".into());
    }
    let key_file = data.join(key_file.file_name().unwrap_or_default());
    let yaml = format!(
        "{}two_factor:\n  encryption_key_file: {}\n",
        DEMO_YAML.replace(relative, &format!("url: {}", yaml_string(&store))),
        yaml_string(&key_file.display().to_string())
    );
    let path = data.join("demo.yaml");
    std::fs::write(&path, &yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok((yaml, path))
}

/// `--listen` read before anything is written: the port is what the printed
/// URLs use, so it must be there.
fn listen_address(listen: &str) -> Result<SocketAddr, String> {
    let example = "write host:port, e.g. localhost:8080";
    let port = match listen.rsplit_once(':') {
        None => return Err(format!("--listen: `{listen}` has no port; {example}")),
        Some((_, port)) => port,
    };
    if port.parse::<u16>().is_err() {
        return Err(format!(
            "--listen: `{listen}` has no port number after its last `:`; {example}"
        ));
    }
    match listen.to_socket_addrs().map(|mut a| a.next()) {
        Ok(Some(addr)) => Ok(addr),
        _ => Err(format!(
            "--listen: `{listen}` is not a host:port address that resolves; {example} (IPv6: [::1]:8080)"
        )),
    }
}

pub fn run(listen: &str, metrics_listen: Option<&str>) -> ExitCode {
    super::init_logging();
    let port = match listen_address(listen) {
        Ok(addr) => addr.port(),
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(2);
        }
    };
    let copy = two_factor_key_file().and_then(|key_file| config_copy(&key_file));
    let (base, config_path) = match copy {
        Ok(found) => found,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(1);
        }
    };
    let key = generate_api_key();
    let url = format!("http://127.0.0.1:{port}");
    let metrics_listen = match metrics_listen {
        Some(m) => m.to_owned(),
        None => port_after(listen, port),
    };
    let yaml = format!(
        "{base}api_keys:\n  - name: demo-key\n    hash: \"{}\"\n    permissions: [\"echo:read\"]\n",
        api_key_hash(&key),
    );
    let cli = config_path.display();
    let env = [
        ("GATEHOUSE__SERVER__LISTEN".to_owned(), listen.to_owned()),
        ("GATEHOUSE__PUBLIC_URL".to_owned(), url.clone()),
        (
            "GATEHOUSE__SERVER__METRICS_LISTEN".to_owned(),
            metrics_listen.clone(),
        ),
    ];
    let config = match Config::from_yaml(&yaml, env) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(1);
        }
    };
    let created = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|rt| rt.block_on(first_admin(&config)));
    let password = match created {
        Ok(p) => p,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "Gatehouse demo: proxying {url}/ to the built-in echo app (users in ./data/gatehouse.db)"
    );
    println!();
    let shown = match &password {
        Some(p) => {
            println!("  admin login:  admin / {p}   (created now; shown only once)");
            p.as_str()
        }
        None => {
            println!("  admin login:  admin / the password printed at the first start");
            println!("                (new one: echo -n NEW | gatehouse user set-password admin -c {cli})");
            "PASSWORD"
        }
    };
    println!("  API key:      {key}   (this run only; permission echo:read)");
    println!("  administer:   gatehouse user list -c {cli}");
    println!("  metrics:      http://{metrics_listen}/metrics");
    println!();
    println!("  curl -i {url}/hello                        # 401: who are you?");
    println!("  curl -u 'admin:{shown}' {url}/hello     # 200: the app sees Remote-User: admin");
    println!("  curl -H 'X-API-Key: {key}' {url}/admin/x  # 403: the key lacks admin:access");
    println!("  curl {url}/public/anything                 # public path");
    println!("  curl -H 'Content-Type: application/json' -d '{{\"username\":\"admin\",\"password\":\"{shown}\"}}' {url}/_auth/api/login");
    println!("                                             # a JWT for `Authorization: Bearer`");
    println!("  browser: {url}/                        # sign-in page, then back with a session");
    println!("  browser: {url}/_auth/account           # turn on two-factor authentication (TOTP)");
    println!();
    super::serve(config, None)
}

#[cfg(test)]
mod tests {
    use super::listen_address;

    #[test]
    fn listen_needs_a_port() {
        assert_eq!(
            listen_address("localhost"),
            Err("--listen: `localhost` has no port; write host:port, e.g. localhost:8080".into())
        );
        assert!(listen_address("localhost:http").is_err_and(|e| e.contains("no port number")));
        assert!(listen_address("127.0.0.1:0").is_ok());
        assert!(listen_address("[::1]:8080").is_ok());
    }
}
