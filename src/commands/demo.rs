//! `gatehouse demo`: Gatehouse in front of the echo app, with a generated
//! admin login and API key printed on start.

use crate::authn::{api_key_hash, generate_api_key, password::hash_password};
use crate::config::Config;
use std::process::ExitCode;

fn random_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn run(listen: &str) -> ExitCode {
    super::init_logging();
    let password = random_password();
    let key = generate_api_key();
    let hash = match hash_password(&password) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("gatehouse: {e}");
            return ExitCode::from(1);
        }
    };
    let port = listen.rsplit(':').next().unwrap_or("8080");
    let yaml = format!(
        r#"
server:
  listen: "{listen}"
public_url: "http://127.0.0.1:{port}"
upstream:
  url: "echo:"
portal:
  title: "Gatehouse demo"
roles:
  viewer: ["echo:read"]
rules:
  - path: /public/**
    policy: public
  - path: /admin/**
    permission: "admin:access"
users:
  - username: admin
    password_hash: "{hash}"
    email: admin@example.test
    name: Demo Admin
    role: admin
api_keys:
  - name: demo-key
    hash: "{key_hash}"
    user: admin
    permissions: ["echo:read"]
"#,
        key_hash = api_key_hash(&key),
    );
    let config = match Config::from_yaml(&yaml, std::iter::empty()) {
        Ok(c) => c,
        Err(errors) => {
            eprint!("{errors}");
            return ExitCode::from(1);
        }
    };
    let url = format!("http://127.0.0.1:{port}");
    println!("Gatehouse demo: proxying {url}/ to the built-in echo app");
    println!();
    println!("  admin login:  admin / {password}");
    println!("  API key:      {key}   (permission echo:read; /admin/** needs admin:access)");
    println!();
    println!("  curl -i {url}/hello                       # 401: who are you?");
    println!("  curl -u 'admin:{password}' {url}/hello    # 200: the app sees Remote-User: admin");
    println!("  curl -H 'X-API-Key: {key}' {url}/admin/x  # 403: the key lacks admin:access");
    println!("  curl {url}/public/anything                # public path");
    println!();
    println!("(nothing is stored: the login changes at every start)");
    super::serve(config)
}
