//! Stored users from the outside: the `gatehouse user` CLI against a running
//! server's store, with changes reaching the server's cache within a poll —
//! on SQLite, and on PostgreSQL across two replicas.

mod common;

use common::*;

fn config(dir: &tempfile::TempDir, store_url: &str, extra: &str) -> String {
    let yaml = format!(
        "server:\n  listen: \"127.0.0.1:{{port}}\"\nupstream:\n  url: \"echo:\"\nstore:\n  url: \"{store_url}\"\nroles:\n  editor: [\"posts:*\"]\nrules:\n  - path: /posts/**\n    permission: \"posts:write\"\n{extra}"
    );
    // The CLI reads the same file (it never listens, so any port will do).
    std::fs::write(dir.path().join("cli.yaml"), yaml.replace("{port}", "1")).unwrap();
    yaml
}

fn status(g: &Gatehouse, path: &str, user: &str, pw: &str) -> u16 {
    client()
        .get(g.url(path))
        .basic_auth(user, Some(pw))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn cli_config(dir: &tempfile::TempDir) -> String {
    dir.path().join("cli.yaml").display().to_string()
}

#[test]
fn cli_changes_reach_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    let yaml = config(&dir, &url, "");
    let cfg = cli_config(&dir);

    // The first user, without --role, becomes admin; later ones are plain users.
    let (code, out, err) = gatehouse_cmd(&["user", "add", "root", "-c", &cfg], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("role admin") && out.contains("password: "),
        "{out}"
    );
    let (code, out, _) = gatehouse_cmd(
        &[
            "user",
            "add",
            "eve",
            "--email",
            "eve@example.test",
            "--password-stdin",
            "-c",
            &cfg,
        ],
        Some("eve-password"),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("role user") && !out.contains("password:"),
        "{out}"
    );
    let (code, _, err) = gatehouse_cmd(&["user", "add", "eve", "-c", &cfg], None);
    assert_eq!(code, 1);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = gatehouse_cmd(&["user", "add", "x", "--role", "ghost", "-c", &cfg], None);
    assert_eq!(code, 1);
    assert!(err.contains("role `ghost`"), "{err}");

    let g = Gatehouse::start(&yaml);
    assert_eq!(status(&g, "/x", "eve", "eve-password"), 200);
    let echo = echo_json(
        &client()
            .get(g.url("/x"))
            .basic_auth("eve", Some("eve-password"))
            .send()
            .unwrap()
            .text()
            .unwrap(),
    );
    assert_eq!(echo["headers"]["remote-email"], "eve@example.test");
    assert_eq!(status(&g, "/posts/1", "eve", "eve-password"), 403);

    // A role change in another process reaches the cached identity.
    let (code, _, _) = gatehouse_cmd(&["user", "set-role", "eve", "editor", "-c", &cfg], None);
    assert_eq!(code, 0);
    eventually("role change applied", || {
        status(&g, "/posts/1", "eve", "eve-password") == 200
    });

    // Disabling takes effect although the credential is cached.
    let (code, _, _) = gatehouse_cmd(&["user", "disable", "eve", "-c", &cfg], None);
    assert_eq!(code, 0);
    let took = eventually("disable applied", || {
        status(&g, "/x", "eve", "eve-password") == 401
    });
    println!("disable reached the server after {took:?}");
    gatehouse_cmd(&["user", "enable", "eve", "-c", &cfg], None);
    eventually("enable applied", || {
        status(&g, "/x", "eve", "eve-password") == 200
    });

    let (code, _, _) = gatehouse_cmd(
        &["user", "set-password", "eve", "-c", &cfg],
        Some("new-password"),
    );
    assert_eq!(code, 0);
    eventually("old password refused", || {
        status(&g, "/x", "eve", "eve-password") == 401
    });
    assert_eq!(status(&g, "/x", "eve", "new-password"), 200);

    let (_, out, _) = gatehouse_cmd(&["user", "list", "-c", &cfg], None);
    assert!(
        out.contains("root")
            && out.contains("admin")
            && out.contains("eve")
            && out.contains("editor"),
        "{out}"
    );
    let (code, _, _) = gatehouse_cmd(&["user", "delete", "eve", "-c", &cfg], None);
    assert_eq!(code, 0);
    eventually("delete applied", || {
        status(&g, "/x", "eve", "new-password") == 401
    });
    let (code, _, err) = gatehouse_cmd(&["user", "delete", "eve", "-c", &cfg], None);
    assert_eq!(code, 1);
    assert!(err.contains("no such user"), "{err}");
}

#[test]
fn the_cli_holds_users_to_the_account_rules() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    config(&dir, &url, "");
    let cfg = cli_config(&dir);
    let add = |args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["user", "add"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["-c", &cfg]);
        gatehouse_cmd(&all, stdin)
    };
    // The same rules as the setup page: a password of 8 characters or more,
    // a name of letters, digits and `_-.@`, an email with an `@`.
    let (code, _, err) = add(&["amy", "--password-stdin"], Some("1234567"));
    assert_eq!(code, 1);
    assert!(err.contains("at least 8 characters"), "{err}");
    let (code, _, err) = add(&["amy smith"], None);
    assert_eq!(code, 1);
    assert!(err.contains("user name"), "{err}");
    let (code, _, err) = add(&["amy", "--email", "amy.example.com"], None);
    assert_eq!(code, 1);
    assert!(err.contains("email"), "{err}");
    let (_, out, _) = gatehouse_cmd(&["user", "list", "-c", &cfg], None);
    assert!(!out.contains("amy"), "nothing refused was stored: {out}");

    let (code, _, err) = add(&["amy", "--password-stdin"], Some("12345678\n"));
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = gatehouse_cmd(&["user", "set-password", "amy", "-c", &cfg], Some("short"));
    assert_eq!(code, 1);
    assert!(err.contains("at least 8 characters"), "{err}");
    let (code, _, err) = gatehouse_cmd(
        &["user", "set-password", "amy", "-c", &cfg],
        Some("long enough"),
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_name_lives_in_config_or_store_not_both() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    let hash = hash_password("pw");
    let yaml = config(
        &dir,
        &url,
        &format!("users:\n  - username: gitops\n    password_hash: \"{hash}\"\n"),
    );
    let cfg = cli_config(&dir);
    let (code, _, err) = gatehouse_cmd(&["user", "add", "gitops", "-c", &cfg], None);
    assert_eq!(code, 1);
    assert!(err.contains("declared in the config file"), "{err}");
    let (code, _, err) = gatehouse_cmd(&["user", "disable", "gitops", "-c", &cfg], None);
    assert_eq!(code, 1);
    assert!(err.contains("read-only"), "{err}");

    // A clash made behind the CLI's back stops the server at start.
    let plain = config(&dir, &url, "");
    std::fs::write(dir.path().join("plain.yaml"), plain.replace("{port}", "1")).unwrap();
    let plain_cfg = dir.path().join("plain.yaml").display().to_string();
    assert_eq!(
        gatehouse_cmd(&["user", "add", "gitops", "-c", &plain_cfg], None).0,
        0
    );
    let path = dir.path().join("clash.yaml");
    std::fs::write(&path, yaml.replace("{port}", &free_port().to_string())).unwrap();
    let (code, _, err) = gatehouse_cmd(&["serve", "-c", &path.display().to_string()], None);
    assert_eq!(code, 1);
    assert!(err.contains("also exist in the store: gitops"), "{err}");
}

#[test]
fn sqlite_users_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    let yaml = config(&dir, &url, "");
    let cfg = cli_config(&dir);
    gatehouse_cmd(
        &["user", "add", "kim", "--password-stdin", "-c", &cfg],
        Some("kim-password"),
    );
    let g = Gatehouse::start(&yaml);
    assert_eq!(status(&g, "/x", "kim", "kim-password"), 200);
    g.stop();
    let g2 = Gatehouse::start(&yaml);
    assert_eq!(status(&g2, "/x", "kim", "kim-password"), 200);
    assert_eq!(
        client()
            .get(g2.url("/_auth/readyz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn two_replicas_on_postgres_agree_within_a_poll() {
    let Some(url) = postgres_database("replicas") else {
        println!("SKIP two_replicas_on_postgres_agree_within_a_poll: set GATEHOUSE_TEST_POSTGRES");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&dir, &url, "");
    let cfg = cli_config(&dir);
    assert_eq!(
        gatehouse_cmd(
            &[
                "user",
                "add",
                "pat",
                "--role",
                "user",
                "--password-stdin",
                "-c",
                &cfg
            ],
            Some("pat-password")
        )
        .0,
        0
    );
    let a = Gatehouse::start(&yaml);
    let b = Gatehouse::start(&yaml);
    assert_eq!(status(&a, "/x", "pat", "pat-password"), 200);
    assert_eq!(status(&b, "/x", "pat", "pat-password"), 200);
    // pat is the only user: disabling her opens setup, hence `--force`.
    assert_eq!(
        gatehouse_cmd(&["user", "disable", "pat", "--force", "-c", &cfg], None).0,
        0
    );
    let ta = eventually("replica a refuses", || {
        status(&a, "/x", "pat", "pat-password") == 401
    });
    let tb = eventually("replica b refuses", || {
        status(&b, "/x", "pat", "pat-password") == 401
    });
    println!("disable reached replica a after {ta:?}, b after {tb:?}");
}

#[test]
fn an_unreachable_store_fails_closed_with_503() {
    let Some(url) = postgres_database("failclosed") else {
        println!("SKIP an_unreachable_store_fails_closed_with_503: set GATEHOUSE_TEST_POSTGRES");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let yaml = config(&dir, &url, "");
    let cfg = cli_config(&dir);
    assert_eq!(
        gatehouse_cmd(
            &["user", "add", "lee", "--password-stdin", "-c", &cfg],
            Some("lee-password")
        )
        .0,
        0
    );
    let g = Gatehouse::start(&yaml);
    assert_eq!(
        client()
            .get(g.url("/_auth/readyz"))
            .send()
            .unwrap()
            .status(),
        200
    );

    // Cut the database off: no new connections, existing ones terminated.
    let db = url.rsplit('/').next().unwrap().to_owned();
    let admin = std::env::var("GATEHOUSE_TEST_POSTGRES").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
    });

    // Idle pooled connections die asynchronously: wait until the store is really gone.
    eventually("readyz reports the store down", || {
        client()
            .get(g.url("/_auth/readyz"))
            .send()
            .unwrap()
            .status()
            == 503
    });
    let r = client()
        .get(g.url("/x"))
        .basic_auth("lee", Some("lee-password"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 503, "an unverifiable credential must not pass");
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = serde_json::from_str(&r.text().unwrap()).unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert_eq!(
        client().get(g.url("/x")).send().unwrap().status(),
        401,
        "no credential is still just 401"
    );

    rt.block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        sqlx::query(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
            .execute(&mut conn)
            .await
            .unwrap();
    });
    eventually("store back", || {
        status(&g, "/x", "lee", "lee-password") == 200
    });
    assert_eq!(
        client()
            .get(g.url("/_auth/readyz"))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn explain_knows_stored_users() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    config(&dir, &url, "");
    let cfg = cli_config(&dir);
    for (name, role) in [("root", "admin"), ("ed", "editor")] {
        let args = [
            "user",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "-c",
            &cfg,
        ];
        assert_eq!(gatehouse_cmd(&args, Some("a-long-password")).0, 0);
    }
    let explain = |user: &str| {
        gatehouse_cmd(
            &[
                "explain", "-c", &cfg, "--method", "POST", "--url", "/posts/1", "--user", user,
            ],
            None,
        )
    };
    // ed lives in the store only; his role's permissions come from the config.
    let (code, out, err) = explain("ed");
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("identity: ed (role editor; permissions posts:*; stored)")
            && out.contains("decision: allow")
            && out.contains("answer:   200"),
        "{out}"
    );
    gatehouse_cmd(&["user", "set-role", "ed", "user", "-c", &cfg], None);
    let (_, out, _) = explain("ed");
    assert!(
        out.contains("forbidden (403)") && out.contains("posts:write"),
        "{out}"
    );
    gatehouse_cmd(&["user", "disable", "ed", "-c", &cfg], None);
    let (_, out, _) = explain("ed");
    assert!(
        out.contains("disabled") && out.contains("answer:   401 account_disabled"),
        "{out}"
    );
    let (code, _, err) = explain("ghost");
    assert_eq!(code, 2);
    assert!(err.contains("no user `ghost`"), "{err}");
}

#[test]
fn apikey_create_holds_keys_to_the_users_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    config(&dir, &url, "");
    let cfg = cli_config(&dir);
    for (name, role) in [("root", "admin"), ("ed", "editor")] {
        let args = ["user", "add", name, "--role", role, "-c", &cfg];
        assert_eq!(gatehouse_cmd(&args, None).0, 0);
    }
    let create = |perms: &str| {
        gatehouse_cmd(
            &[
                "apikey",
                "create",
                "--user",
                "ed",
                "--permissions",
                perms,
                "-c",
                &cfg,
            ],
            None,
        )
    };
    // The same rule as `api/me/api-keys`: at most what the role grants.
    let (code, _, err) = create("admin:access");
    assert_eq!(code, 1, "a key beyond ed's role was made");
    assert!(err.contains("admin:access"), "{err}");
    let (code, _, err) = create("posts:read,*");
    assert_eq!(code, 1);
    assert!(err.contains('*'), "{err}");
    let (code, out, err) = create("posts:read");
    assert_eq!(code, 0, "{err}");
    assert!(out.trim().starts_with("gh_"), "{out}");
}

/// A child process killed when dropped (also when the test fails).
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Spawn `gatehouse serve -c config` with stderr going to a file (not a
/// terminal); answers the child, the file and the port.
fn serve_logging_to_file(dir: &tempfile::TempDir, yaml: &str) -> (Server, std::path::PathBuf, u16) {
    let port = free_port();
    let path = dir.path().join("serve.yaml");
    std::fs::write(&path, yaml.replace("{port}", &port.to_string())).unwrap();
    let log = dir.path().join("serve.log");
    let child = std::process::Command::new(BIN)
        .args(["serve", "-c", &path.display().to_string()])
        .env("RUST_LOG", "info")
        .env_remove("GATEHOUSE_LOG_FORMAT")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let child = Server(child);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    eventually("the server answers", || {
        raw_request(
            addr,
            "GET /_auth/healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .is_ok_and(|r| r.starts_with("HTTP/1.1 200"))
    });
    (child, log, port)
}

#[test]
fn the_last_enabled_user_is_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/users.db", dir.path().display());
    let yaml = config(&dir, &url, "");
    let cfg = cli_config(&dir);
    // No administrator at all: the last-administrator rule does not apply.
    for name in ["pat", "sam"] {
        let args = ["user", "add", name, "--role", "editor", "-c", &cfg];
        assert_eq!(gatehouse_cmd(&args, None).0, 0);
    }
    let (server, log, port) = serve_logging_to_file(&dir, &yaml);
    let setup = format!("http://127.0.0.1:{port}/_auth/setup");
    assert_eq!(client().get(&setup).send().unwrap().status(), 403);

    assert_eq!(
        gatehouse_cmd(&["user", "delete", "sam", "-c", &cfg], None).0,
        0
    );
    for action in ["disable", "delete"] {
        let (code, _, err) = gatehouse_cmd(&["user", action, "pat", "-c", &cfg], None);
        assert_eq!(code, 1, "{action} of the last enabled user went through");
        assert!(
            err.contains("last enabled user")
                && err.contains("/_auth/setup")
                && err.contains("--force"),
            "{err}"
        );
    }
    assert_eq!(client().get(&setup).send().unwrap().status(), 403);
    let (code, _, err) = gatehouse_cmd(&["user", "disable", "pat", "--force", "-c", &cfg], None);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("warning"), "{err}");
    eventually("the server warns that setup is open again", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("setup page is open again"))
    });
    assert_eq!(client().get(&setup).send().unwrap().status(), 200);
    drop(server);
    // Written to a file, the log carries no colour codes.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("gatehouse listening"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "ANSI codes in a log file:\n{text}"
    );
}
