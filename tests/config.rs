//! Configuration from the outside: example files, `check-config` errors with
//! key paths and lines, environment overrides, `*_file` secrets, and the
//! `hash-password`, `apikey` and `explain` commands.

mod common;

use common::*;
use std::process::{Command, Stdio};

fn gatehouse(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .envs(env.iter().copied())
        .env_remove("GATEHOUSE_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// `check-config` of `text` (in a file of its own) with `env`: exit code and stderr.
fn check_yaml(text: &str, env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "gatehouse.yaml", text);
    let (code, _, err) = gatehouse(&["check-config", "-c", &p], env);
    (code, err)
}

#[test]
fn every_example_config_is_valid() {
    let mut seen = 0;
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/config")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            let p = path.display().to_string();
            // The container image's config leaves the app to the environment.
            let env: &[(&str, &str)] = if p.ends_with("/container.yaml") {
                let (code, _, err) = gatehouse(&["check-config", "-c", &p], &[]);
                assert_eq!(code, 1, "{p}: the app is required");
                assert!(err.contains("upstream.url"), "{err}");
                &[("GATEHOUSE__UPSTREAM__URL", "http://127.0.0.1:3000")]
            } else {
                &[]
            };
            let (code, out, err) = gatehouse(&["check-config", "-c", &p], env);
            assert_eq!(code, 0, "{p}: {out}{err}");
            seen += 1;
        }
    }
    assert!(seen >= 2, "expected the minimal and the annotated example");
}

#[test]
fn check_config_reports_every_error_with_path_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "bad.yaml",
        r#"server:
  listen: "127.0.0.1:8080"
  trusted_proxies: ["10.0.0.0/8", "not-an-ip"]
upstream:
  url: "ftp://x"
roles:
  editor: ["posts:*", "bad permission"]
rules:
  - path: /a/**
    policy: maybe
  - path: relative
    policy: public
  - path: /b
    permission: "x:y"
    policy: public
users:
  - username: alice
    password_hash: "plaintext"
    role: ghost
"#,
    );
    let (code, _out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "server.trusted_proxies[1] (line 3)",
        "upstream.url (line 5)",
        "roles.editor[1] (line 7)",
        "rules[0].policy (line 10)",
        "rules[1] (line 11)",
        "rules[2] (line 13)",
        "users[0].password_hash (line 18)",
        "users[0].role (line 19)",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.contains("8 error(s)"), "{err}");
}

#[test]
fn unknown_keys_are_errors_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "typo.yaml",
        "upstream:\n  url: \"echo:\"\nserver:\n  lisen: 1\n",
    );
    let (code, _, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("server.lisen (line 4): unknown key `lisen`; did you mean `listen`?"),
        "{err}"
    );
    let p = write(
        &dir,
        "top.yaml",
        "upstream:\n  url: \"echo:\"\nsesion: {}\n",
    );
    let (code, _, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("sesion (line 3): unknown key `sesion`; did you mean `session`?"),
        "{err}"
    );
    let p = write(&dir, "yaml.yaml", "upstream: [\n");
    let (code, _, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("not valid YAML") && err.contains("line"),
        "{err}"
    );
}

#[test]
fn check_config_reports_every_schema_error_in_one_run_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "four.yaml",
        "upstrem:\n  url: \"echo:\"\nserver:\n  lisen: \"127.0.0.1:8080\"\n  threads: many\nsession:\n  idle_timeout: ten minutes\n",
    );
    let expected = [
        "error: upstrem (line 1): unknown key `upstrem`; did you mean `upstream`?",
        "error: server.lisen (line 4): unknown key `lisen`; did you mean `listen`?",
        "error: server.threads (line 5): expected a whole number, 0 or more, found text `many`",
        "error: session.idle_timeout (line 7): `ten minutes` is not a duration like `30s`, `5m` or `24h`",
    ];
    for command in ["check-config", "serve"] {
        let (code, _, err) = gatehouse(&[command, "-c", &p], &[]);
        assert_eq!(code, 1, "{err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
        assert_eq!(lines.len(), 4, "{command}: each mistake once:\n{err}");
        for (line, expected) in lines.iter().zip(expected) {
            assert!(
                line.starts_with(expected),
                "{command}: `{expected}` in file order:\n{err}"
            );
        }
        assert!(err.contains("4 error(s)"), "{err}");
    }
}

#[test]
fn a_tab_in_the_indentation_is_named() {
    let (code, err) = check_yaml("upstream:\n\turl: \"echo:\"\n", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("error: line 2: tabs are not allowed for indentation; use spaces"),
        "{err}"
    );
}

#[test]
fn errors_in_environment_overrides_name_the_variable() {
    let echo = "upstream:\n  url: \"echo:\"\n";
    let (code, err) = check_yaml(
        echo,
        &[
            ("GATEHOUSE__SERVER__THREADS", "many"),
            ("GATEHOUSE__SERVER__LISTEN", "localhost"),
        ],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("error: env GATEHOUSE__SERVER__THREADS (server.threads): expected a whole number, 0 or more, found text `many`"),
        "{err}"
    );
    assert!(
        err.contains("error: env GATEHOUSE__SERVER__LISTEN (server.listen): `localhost` is not a `host:port` address"),
        "{err}"
    );
    assert!(!err.contains("(line "), "no line of the file: {err}");
    // Where text is wanted, a variable's text is taken as it is, even when
    // it reads as a number.
    let (code, err) = check_yaml(
        echo,
        &[
            ("GATEHOUSE__SMTP__HOST", "localhost"),
            ("GATEHOUSE__SMTP__SECURITY", "none"),
            ("GATEHOUSE__SMTP__FROM", "no-reply@example.com"),
            ("GATEHOUSE__SMTP__USERNAME", "4711"),
            ("GATEHOUSE__SMTP__PASSWORD", "12345678"),
            ("GATEHOUSE__UPSTREAM__CONNECT_TIMEOUT", "5"),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn environment_overrides_reach_list_items_the_file_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(&dir, "c.yaml", "upstream:\n  url: \"echo:\"\n");
    let deny = [("GATEHOUSE__RULES__0__POLICY", "deny")];
    let (code, out, err) = gatehouse(&["check-config", "-c", &p], &deny);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = gatehouse(&["explain", "-c", &p, "--url", "/x"], &deny);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("rules[0]") && out.contains("forbidden (403)"),
        "{out}"
    );
    // The file's rules (written as a list) gain a field and an item.
    let p = write(
        &dir,
        "rules.yaml",
        "upstream:\n  url: \"echo:\"\nrules:\n  - path: /open/**\n    policy: public\n",
    );
    let env = [
        ("GATEHOUSE__RULES__0__PATH", "/health"),
        ("GATEHOUSE__RULES__1__POLICY", "deny"),
    ];
    let (_, out, err) = gatehouse(&["explain", "-c", &p, "--url", "/health"], &env);
    assert!(
        out.contains("rules[0]") && out.contains("allow"),
        "{out}{err}"
    );
    let (_, out, err) = gatehouse(&["explain", "-c", &p, "--url", "/open/x"], &env);
    assert!(
        out.contains("rules[1]") && out.contains("403"),
        "{out}{err}"
    );
    // A user made from the environment alone.
    let (code, out, err) = gatehouse(
        &["check-config", "-c", &p],
        &[
            ("GATEHOUSE__USERS__0__USERNAME", "ann"),
            ("GATEHOUSE__USERS__0__NAME", "Ann"),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    // An index past the end names the variable.
    let (code, _, err) = gatehouse(
        &["check-config", "-c", &p],
        &[("GATEHOUSE__RULES__5__POLICY", "deny")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("error: env GATEHOUSE__RULES__5__POLICY: index 5 is past the end of `rules`, which has 1 item(s): use 0 to 1"),
        "{err}"
    );
}

#[test]
fn a_wrong_public_url_is_one_error() {
    let (code, err) = check_yaml(
        "public_url: \"not a url\"\nupstream:\n  url: \"echo:\"\n",
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("error: public_url (line 1): `not a url` is not an http(s) URL"),
        "{err}"
    );
    assert!(
        err.contains("1 error(s)"),
        "nothing derived from it:\n{err}"
    );
}

#[test]
fn the_demo_says_its_listen_address_lacks_a_port() {
    let run_dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["demo", "--listen", "localhost"])
        .current_dir(run_dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "gatehouse: --listen: `localhost` has no port; write host:port, e.g. localhost:8080\n"
    );
    assert!(out.stdout.is_empty());
    assert!(
        !run_dir.path().join("data").exists(),
        "nothing is written for a wrong command line"
    );
}

#[test]
fn environment_overrides_and_file_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("from-a-file");
    let secret = write(&dir, "hash.txt", &format!("{hash}\n"));
    let p = write(
        &dir,
        "c.yaml",
        &format!("upstream:\n  url: \"http://127.0.0.1:1\"\nusers:\n  - username: erin\n    password_hash_file: \"{secret}\"\n"),
    );
    let (code, out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = gatehouse(
        &["check-config", "-c", &p],
        &[("GATEHOUSE__SERVER__THREADS", "0")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("server.threads"), "{err}");
    let (code, _, err) = gatehouse(
        &["check-config", "-c", &p],
        &[("GATEHOUSE__UPSTREAM__URL", "nope")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("upstream.url"), "{err}");
}

#[test]
fn env_override_and_file_secret_change_what_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("from-a-file");
    let secret = write(&dir, "hash.txt", &format!("{hash}\n"));
    // The file's listener is unusable; only the override makes it start.
    let g = Gatehouse::start_with_env(
        &format!("server:\n  listen: \"not-an-address\"\nupstream:\n  url: \"echo:\"\nusers:\n  - username: erin\n    password_hash_file: \"{secret}\"\n"),
        &[("GATEHOUSE__SERVER__LISTEN", "127.0.0.1:{port}")],
    );
    let r = client()
        .get(g.url("/x"))
        .basic_auth("erin", Some("from-a-file"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[test]
fn both_value_and_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "c.yaml",
        "upstream:\n  url: \"echo:\"\nusers:\n  - username: x\n    password_hash: a\n    password_hash_file: /nonexistent\n",
    );
    let (code, _, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("users[0].password_hash_file") && err.contains("not both"),
        "{err}"
    );
}

#[test]
fn hash_password_makes_argon2id() {
    let h = hash_password("s3cret");
    assert!(h.starts_with("$argon2id$v=19$"), "{h}");
    let (code, _, err) = gatehouse(&["hash-password"], &[]);
    assert_eq!(code, 1, "empty stdin is refused");
    assert!(err.contains("empty password"));
}

#[test]
fn apikey_generate_prints_key_and_matching_hash() {
    let (code, out, _) = gatehouse(&["apikey", "generate"], &[]);
    assert_eq!(code, 0);
    let key = out.lines().find_map(|l| l.strip_prefix("key:  ")).unwrap();
    let hash = out.lines().find_map(|l| l.strip_prefix("hash: ")).unwrap();
    assert!(key.starts_with("gh_") && key.len() >= 40);
    assert_eq!(api_key_hash(key), hash);
}

#[test]
fn explain_names_the_rule_and_the_decision() {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("x");
    let p = write(
        &dir,
        "c.yaml",
        &format!(
            "public_url: https://app.example.com\nupstream:\n  url: \"echo:\"\nroles:\n  reader: [\"posts:read\"]\nrules:\n  - path: /health\n    policy: public\n  - path: /posts/**\n    methods: [POST]\n    permission: \"posts:write\"\nusers:\n  - username: bob\n    password_hash: \"{hash}\"\n    role: reader\n"
        ),
    );
    let (code, out, _) = gatehouse(
        &[
            "explain",
            "-c",
            &p,
            "--method",
            "POST",
            "--url",
            "https://app.example.com/posts/1",
            "--user",
            "bob",
        ],
        &[],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("rules[1]") && out.contains("forbidden (403)") && out.contains("posts:write"),
        "{out}"
    );
    let (_, out, _) = gatehouse(&["explain", "-c", &p, "--url", "/health"], &[]);
    assert!(out.contains("rules[0]") && out.contains("allow"), "{out}");
    let (_, out, _) = gatehouse(&["explain", "-c", &p, "--url", "/other"], &[]);
    assert!(
        out.contains("default") && out.contains("unauthenticated (401"),
        "{out}"
    );
    let (_, out, _) = gatehouse(
        &["explain", "-c", &p, "--url", "/other", "--user", "bob"],
        &[],
    );
    assert!(out.contains("decision: allow"), "{out}");
    let (code, _, err) = gatehouse(
        &["explain", "-c", &p, "--url", "/x", "--user", "ghost"],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("no user `ghost`"));
}

#[test]
fn single_sign_on_settings_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "sso.yaml",
        r#"upstream:
  url: "echo:"
oidc:
  providers:
    - id: Corp
      issuer: "not a url"
      client_id: ""
      scopes: [email]
      role_map: { admins: ghost }
    - id: ok
      issuer: "https://idp.example.com"
      client_id: gatehouse
      default_role: nobody
  auto_redirect: elsewhere
"#,
    );
    let (code, _out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "oidc.providers[0].id (line 5)",
        "oidc.providers[0].issuer (line 6)",
        "oidc.providers[0].client_id (line 7)",
        "oidc.providers[0].scopes (line 8)",
        "oidc.providers[0].role_map.admins (line 9)",
        "oidc.providers[1].default_role (line 13)",
        "oidc.auto_redirect (line 14)",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.contains("7 error(s)"), "{err}");
}

#[test]
fn smtp_settings_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "smtp.yaml",
        r#"upstream:
  url: "echo:"
smtp:
  host: smtp.example.com
  port: 0
  security: none
  username: gatehouse
  from: "not an address"
  templates_dir: /nonexistent/gatehouse-mail
"#,
    );
    let (code, _out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "smtp.port (line 5): must be 1-65535",
        "smtp.security (line 6): `none` sends logins and links in clear text, so only to a loopback host",
        "smtp.username (line 7): set `password` (or `password_file`) too",
        "smtp.from (line 8): `not an address` is not a mail address",
        "smtp.templates_dir (line 9): `/nonexistent/gatehouse-mail` is not a directory",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
    assert!(err.contains("5 error(s)"), "{err}");

    // A misspelt variable in an override fails the check, not a mail.
    let mail = dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::write(mail.join("password_reset.txt"), "Open {{ lnik }}\n").unwrap();
    let secret = write(&dir, "smtp-password", "s3cret\n");
    let p = write(
        &dir,
        "smtp2.yaml",
        &format!(
            r#"upstream:
  url: "echo:"
smtp:
  security: plain
  password_file: {secret}
  templates_dir: {}
"#,
            mail.display()
        ),
    );
    let (code, _out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "smtp.host (line 3): required: the SMTP server's name or address",
        "smtp.security (line 4): `plain` must be `starttls`, `tls` or `none`",
        "smtp.password (line 5): set `username` too, or neither",
        "smtp.from (line 3): required",
        "smtp.templates_dir (line 6): mail template `password_reset.txt`: undefined value",
        "(this mail's variables: title, link, ttl_minutes, username)",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }

    // Fixed, with the password from its file and the port from the security.
    std::fs::write(mail.join("password_reset.txt"), "Open {{ link }}\n").unwrap();
    let p = write(
        &dir,
        "smtp3.yaml",
        &format!(
            r#"upstream:
  url: "echo:"
smtp:
  host: localhost
  security: none
  username: gatehouse
  password_file: {secret}
  from: "Example App <no-reply@example.com>"
  templates_dir: {}
"#,
            mail.display()
        ),
    );
    let (code, out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn registration_settings_are_checked_with_their_lines() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        &dir,
        "reg.yaml",
        "upstream:\n  url: \"echo:\"\nregistration:\n  mode: sometimes\n  default_role: ghost\n  activation_ttl: 10s\n",
    );
    let (code, _out, err) = gatehouse(&["check-config", "-c", &p], &[]);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "registration.mode (line 4)",
        "registration.default_role (line 5)",
        "registration.activation_ttl (line 6)",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}

/// A child process killed when dropped (also when the test fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_hints_work_from_any_directory_and_its_log_has_no_colour_codes() {
    use std::io::BufRead;
    let run_dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(BIN)
        .args(["demo", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(run_dir.path())
        .env("RUST_LOG", "info")
        .env_remove("GATEHOUSE_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let demo = Killed(child);
    let log = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut std::io::BufReader::new(stderr), &mut text);
        text
    });
    let mut printed = String::new();
    let mut config = None;
    let mut lines = std::io::BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some((_, path)) = line.split_once("gatehouse user list -c ") {
            config = Some(path.trim().to_owned());
            break;
        }
    }
    // Read the rest too: a closed pipe would fail the demo's next line.
    std::thread::spawn(move || lines.for_each(drop));
    let config = config.unwrap_or_else(|| panic!("no config path in the hints:\n{printed}"));
    assert!(
        std::path::Path::new(&config).is_absolute(),
        "a relative path only works from one directory: {config}"
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    eventually("the demo answers", || {
        raw_request(
            addr,
            "GET /_auth/healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    // This test runs elsewhere (the crate's directory), and still reaches
    // the demo's store: its admin is listed and explained.
    let (code, out, err) = gatehouse(&["user", "list", "-c", &config], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin"), "{out}");
    let (code, out, err) = gatehouse(
        &[
            "explain", "-c", &config, "--url", "/admin/x", "--user", "admin",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("decision: allow"), "{out}");
    drop(demo);
    let log = log.join().unwrap();
    assert!(log.contains("gatehouse listening"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI codes in piped logs:\n{log}");
}
