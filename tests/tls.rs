//! The TLS listener, checked with real curl: HTTP/2 by ALPN and HTTP/1.1,
//! and the same decisions as plain HTTP.

mod common;

use common::*;
use std::process::Command;

fn tool(name: &str, arg: &str) -> bool {
    Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn tls_listener_speaks_h2_and_h1() {
    if !tool("openssl", "version") || !tool("curl", "--version") {
        println!("SKIP tls_listener_speaks_h2_and_h1: openssl and curl are needed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let hash = hash_password("tls-pw");
    let g = Gatehouse::start(&format!(
        "server:\n  listen: \"127.0.0.1:{{port}}\"\n  tls:\n    cert_path: \"{}\"\n    key_path: \"{}\"\npublic_url: \"https://localhost:{{port}}\"\nupstream:\n  url: \"echo:\"\nusers:\n  - username: tess\n    password_hash: \"{hash}\"\n",
        cert.display(),
        key.display()
    ));
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version} %{http_code}",
            ])
            .args(args)
            .arg(format!("https://127.0.0.1:{}/app", g.port))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(&["--http2"]), "2 401");
    assert_eq!(curl(&["--http2", "-u", "tess:tls-pw"]), "2 200");
    assert_eq!(curl(&["--http1.1", "-u", "tess:tls-pw"]), "1.1 200");
    assert_eq!(curl(&["--http1.1", "-u", "tess:wrong"]), "1.1 401");
}

#[test]
fn a_non_pem_certificate_is_a_config_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    let cfg = dir.path().join("c.yaml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  tls:\n    cert_path: \"{0}\"\n    key_path: \"{0}\"\nupstream:\n  url: \"echo:\"\n",
            junk.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("server.tls.cert_path (line 3)") && err.contains("not a PEM file"),
        "{err}"
    );
}
