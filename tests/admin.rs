//! Administration from the outside, on SQLite and on PostgreSQL: the users
//! API with its permission matrix (anonymous, a user, `users:get` only, an
//! administrator), the last-administrator rules, read-only config-file
//! users, one user's sessions, second factor and keys, your own sessions,
//! the audit trail through the real endpoints, the CLI's `user sessions`,
//! `user signout` and `audit`, and a change on one replica refused on the
//! other.

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use totp_rs::{Algorithm, Secret, TOTP};

const KEY: &str = "test-only two-factor key, 32+ characters long";

/// A site on `store_url`: root (admin, the first user), vera (`viewer`:
/// `users:get` only), amy (`user`), and gitops declared in the config file.
struct Site {
    g: Gatehouse,
    cli: String,
    yaml: String,
    _dir: tempfile::TempDir,
}

fn site(store_url: &str, extra: &str) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("gitops-password");
    let yaml = store_yaml(
        store_url,
        &format!(
            "roles:\n  admin: [\"*\"]\n  viewer: [\"users:get\"]\n  ops: [\"users:*\", \"echo:read\"]\n  auditor: [\"audit:get\"]\n  user: [\"echo:read\"]\n\
             users:\n  - username: gitops\n    password_hash: \"{hash}\"\n    role: user\n\
             two_factor:\n  encryption_key: \"{KEY}\"\n\
             regulation:\n  max_retries: 100\n{extra}"
        ),
    );
    let cli = dir.path().join("cli.yaml");
    std::fs::write(
        &cli,
        yaml.replace("{port}", "1").replace("{metrics_port}", "2"),
    )
    .unwrap();
    let cli = cli.display().to_string();
    for (name, role) in [("root", "admin"), ("vera", "viewer"), ("amy", "user")] {
        let pw = format!("{name}-password");
        let args = [
            "user",
            "add",
            name,
            "--role",
            role,
            "--email",
            &format!("{name}@example.test"),
            "--password-stdin",
            "-c",
            &cli,
        ];
        let (code, _, err) = gatehouse_cmd(&args, Some(&pw));
        assert_eq!(code, 0, "{err}");
    }
    let g = Gatehouse::start(&yaml);
    Site {
        g,
        cli,
        yaml,
        _dir: dir,
    }
}

/// Who calls: nobody, or a user by Basic.
#[derive(Clone, Copy, Debug)]
enum Caller {
    Anonymous,
    Basic(&'static str),
}

fn call(
    g: &Gatehouse,
    method: Method,
    path: &str,
    who: Caller,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method, g.url(&format!("/_auth/api{path}")));
    if let Caller::Basic(name) = who {
        req = req.basic_auth(name, Some(format!("{name}-password")));
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn admin_call(g: &Gatehouse, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    call(g, method, path, Caller::Basic("root"), body)
}

/// Every endpoint, for each caller: 401 for nobody, 403 for a user, reads
/// only for `users:get`, everything for an administrator.
fn permission_matrix(g: &Gatehouse) {
    // A user for the administrator's changes to land on.
    let (status, made) = admin_call(
        g,
        Method::POST,
        "/users",
        Some(json!({"username": "target", "password": "target-password"})),
    );
    assert_eq!(status, 201, "{made}");
    let id = made["id"].as_i64().expect("a stored id");
    // (method, path, body, is a read)
    let endpoints: Vec<(Method, String, Option<Value>, bool)> = vec![
        (Method::GET, "/users".into(), None, true),
        (Method::GET, format!("/users/{id}"), None, true),
        (Method::GET, "/users/target".into(), None, true),
        (Method::GET, "/roles".into(), None, true),
        (Method::GET, "/users/target/sessions".into(), None, true),
        (Method::GET, "/users/target/api-keys".into(), None, true),
        (
            Method::POST,
            "/users".into(),
            Some(json!({"username": "made-by-matrix"})),
            false,
        ),
        (
            Method::PATCH,
            format!("/users/{id}"),
            Some(json!({"name": "Target Person"})),
            false,
        ),
        (Method::DELETE, "/users/target/sessions".into(), None, false),
        (Method::DELETE, "/users/target/api-keys".into(), None, false),
        (Method::POST, "/users/target/reset-2fa".into(), None, false),
        (Method::DELETE, "/users/made-by-matrix".into(), None, false),
    ];
    for (method, path, body, read) in &endpoints {
        for (who, want) in [
            (Caller::Anonymous, 401),
            (Caller::Basic("amy"), 403),
            (Caller::Basic("vera"), if *read { 200 } else { 403 }),
        ] {
            let (status, answer) = call(g, method.clone(), path, who, body.clone());
            assert_eq!(status, want, "{method} {path} as {who:?}: {answer}");
            if status == 403 {
                assert_eq!(answer["error"], "forbidden", "{answer}");
            }
        }
        let (status, answer) = admin_call(g, method.clone(), path, body.clone());
        let want: &[u16] = match (method.as_str(), path.as_str()) {
            ("POST", "/users") => &[201],
            ("DELETE", "/users/made-by-matrix") => &[204],
            // Nothing to reset: the administrator was let through.
            (_, p) if p.ends_with("reset-2fa") => &[409],
            _ => &[200],
        };
        assert!(
            want.contains(&status),
            "{method} {path} as the administrator: {status} {answer}"
        );
    }
    // The audit trail is for `audit:get`: an administrator (`*`) may, a
    // `users:get` holder may not.
    assert_eq!(
        call(g, Method::GET, "/audit", Caller::Basic("vera"), None).0,
        403
    );
    assert_eq!(
        call(g, Method::GET, "/audit", Caller::Anonymous, None).0,
        401
    );
    assert_eq!(admin_call(g, Method::GET, "/audit", None).0, 200);
}

fn users_api(g: &Gatehouse) {
    // Listing: declared users first (read-only), then stored, by name.
    let (status, list) = admin_call(g, Method::GET, "/users", None);
    assert_eq!(status, 200, "{list}");
    let names: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gitops", "amy", "root", "target", "vera"]);
    assert_eq!(list["total"], 5);
    let gitops = &list["users"][0];
    assert_eq!(
        (&gitops["read_only"], &gitops["source"], &gitops["id"]),
        (&json!(true), &json!("config"), &Value::Null)
    );
    let amy = &list["users"][1];
    assert_eq!(
        (&amy["type"], &amy["status"], &amy["role"], &amy["email"]),
        (
            &json!("user"),
            &json!("enabled"),
            &json!("user"),
            &json!("amy@example.test")
        )
    );
    assert!(amy.get("password_hash").is_none(), "{amy}");

    // Search and filters, and paging across declared and stored users.
    let names_of = |query: &str| -> (Vec<String>, i64) {
        let (status, list) = admin_call(g, Method::GET, &format!("/users?{query}"), None);
        assert_eq!(status, 200, "{query}: {list}");
        let names = list["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["username"].as_str().unwrap().to_owned())
            .collect();
        (names, list["total"].as_i64().unwrap())
    };
    assert_eq!(names_of("q=AMY@EXAMPLE"), (vec!["amy".to_owned()], 1));
    assert_eq!(names_of("role=viewer"), (vec!["vera".to_owned()], 1));
    assert_eq!(names_of("q=%25"), (vec![], 0), "% is not a wildcard");
    assert_eq!(
        names_of("per_page=2&page=1"),
        (vec!["gitops".to_owned(), "amy".to_owned()], 5)
    );
    assert_eq!(
        names_of("per_page=2&page=2"),
        (vec!["root".to_owned(), "target".to_owned()], 5)
    );
    assert_eq!(names_of("per_page=2&page=3"), (vec!["vera".to_owned()], 5));
    for (query, field) in [
        ("type=robot", "type"),
        ("status=on", "status"),
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
    ] {
        let (status, e) = admin_call(g, Method::GET, &format!("/users?{query}"), None);
        assert_eq!((status, &e["field"]), (400, &json!(field)), "{query}: {e}");
    }

    // Creating: typed errors naming the field; a taken name is 409.
    for (body, field) in [
        (json!({"username": "bad name"}), "username"),
        (json!({"username": "ok", "email": "nope"}), "email"),
        (json!({"username": "ok", "role": "ghost"}), "role"),
        (json!({"username": "ok", "type": "robot"}), "type"),
        (json!({"username": "ok", "status": "maybe"}), "status"),
        (json!({"username": "ok", "password": "short"}), "password"),
    ] {
        let (status, e) = admin_call(g, Method::POST, "/users", Some(body.clone()));
        assert_eq!((status, &e["field"]), (400, &json!(field)), "{body}: {e}");
    }
    let (status, e) = admin_call(
        g,
        Method::POST,
        "/users",
        Some(json!({"name": "no username"})),
    );
    assert_eq!(status, 400, "{e}");
    for taken in ["amy", "gitops"] {
        let (status, e) = admin_call(g, Method::POST, "/users", Some(json!({"username": taken})));
        assert_eq!(
            (status, &e["error"]),
            (409, &json!("username_taken")),
            "{e}"
        );
    }
    let (status, bot) = admin_call(
        g,
        Method::POST,
        "/users",
        Some(
            json!({"username": "bot", "type": "api", "role": "user", "status": "disabled",
                    "password": "bot-password"}),
        ),
    );
    assert_eq!(status, 201, "{bot}");
    assert_eq!(
        (&bot["type"], &bot["status"]),
        (&json!("api"), &json!("disabled"))
    );
    // Created disabled: its password does not work yet.
    assert_eq!(
        call(g, Method::GET, "/me", Caller::Basic("bot"), None).0,
        401
    );
    let (status, bot) = admin_call(
        g,
        Method::PATCH,
        "/users/bot",
        Some(json!({"status": "enabled"})),
    );
    assert_eq!((status, &bot["status"]), (200, &json!("enabled")));
    eventually("the enabled machine account works", || {
        call(g, Method::GET, "/me", Caller::Basic("bot"), None).0 == 200
    });

    // Changing: partial; null clears; unknown fields are refused.
    let (status, t) = admin_call(
        g,
        Method::PATCH,
        "/users/target",
        Some(json!({"email": "t@example.test", "role": "viewer"})),
    );
    assert_eq!(status, 200, "{t}");
    assert_eq!(
        (&t["email"], &t["role"], &t["name"]),
        (
            &json!("t@example.test"),
            &json!("viewer"),
            &json!("Target Person")
        )
    );
    let (_, t) = admin_call(
        g,
        Method::PATCH,
        "/users/target",
        Some(json!({"name": null})),
    );
    assert_eq!(
        (&t["name"], &t["email"]),
        (&Value::Null, &json!("t@example.test"))
    );
    let (status, e) = admin_call(
        g,
        Method::PATCH,
        "/users/target",
        Some(json!({"colour": "red"})),
    );
    assert_eq!(status, 400, "{e}");
    let (status, e) = admin_call(
        g,
        Method::PATCH,
        "/users/target",
        Some(json!({"email": "amy@example.test"})),
    );
    assert_eq!(
        (status, &e["error"]),
        (409, &json!("username_taken")),
        "{e}"
    );
    let (status, e) = admin_call(g, Method::GET, "/users/nobody", None);
    assert_eq!((status, &e["error"]), (404, &json!("not_found")));
    let (status, e) = admin_call(g, Method::GET, "/users/999999", None);
    assert_eq!(status, 404, "{e}");

    // A password set by an administrator works, the old one does not.
    let (status, _) = admin_call(
        g,
        Method::PATCH,
        "/users/amy",
        Some(json!({"password": "amy-new-password"})),
    );
    assert_eq!(status, 200);
    let me = |pw: &str| {
        client()
            .get(g.url("/_auth/api/me"))
            .basic_auth("amy", Some(pw))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(me("amy-password"), 401);
    assert_eq!(me("amy-new-password"), 200);
    admin_call(
        g,
        Method::PATCH,
        "/users/amy",
        Some(json!({"password": "amy-password"})),
    );

    // Roles and their permissions.
    let (_, roles) = admin_call(g, Method::GET, "/roles", None);
    let viewer = roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "viewer")
        .expect("viewer");
    assert_eq!(viewer["permissions"], json!(["users:get"]));
}

/// Config-file users: listed, read, never changed here.
fn read_only_users(g: &Gatehouse) {
    let (status, u) = admin_call(g, Method::GET, "/users/gitops", None);
    assert_eq!((status, &u["read_only"]), (200, &json!(true)), "{u}");
    for (method, body) in [
        (Method::PATCH, Some(json!({"status": "disabled"}))),
        (Method::PATCH, Some(json!({"role": "admin"}))),
        (Method::DELETE, None),
    ] {
        let (status, e) = admin_call(g, method.clone(), "/users/gitops", body);
        assert_eq!(
            (status, &e["error"]),
            (409, &json!("read_only_user")),
            "{method}: {e}"
        );
    }
    // Their sessions live in the store: those can be ended.
    let (status, _) = admin_call(g, Method::DELETE, "/users/gitops/sessions", None);
    assert_eq!(status, 200);
}

/// One enabled administrator always remains.
fn last_admin(g: &Gatehouse) {
    for (method, body) in [
        (Method::PATCH, Some(json!({"status": "disabled"}))),
        (Method::PATCH, Some(json!({"role": "user"}))),
        (Method::DELETE, None),
    ] {
        let (status, e) = admin_call(g, method.clone(), "/users/root", body);
        assert_eq!(
            (status, &e["error"]),
            (409, &json!("last_admin")),
            "{method}: {e}"
        );
    }
    assert_eq!(
        call(g, Method::GET, "/users", Caller::Basic("root"), None).0,
        200
    );
    // With a second administrator, the first may step down.
    let (status, _) = admin_call(
        g,
        Method::POST,
        "/users",
        Some(json!({"username": "root2", "role": "admin", "password": "root2-password"})),
    );
    assert_eq!(status, 201);
    let (status, me) = admin_call(
        g,
        Method::PATCH,
        "/users/root",
        Some(json!({"role": "user"})),
    );
    assert_eq!((status, &me["role"]), (200, &json!("user")), "{me}");
    // Now root2 is the last one; root is back to admin through root2.
    let (status, _) = call(
        g,
        Method::PATCH,
        "/users/root",
        Caller::Basic("root2"),
        Some(json!({"role": "admin"})),
    );
    assert_eq!(status, 200);
    eventually("root is an administrator again", || {
        admin_call(g, Method::GET, "/roles", None).0 == 200
    });
    assert_eq!(admin_call(g, Method::DELETE, "/users/root2", None).0, 204);
}

/// `users:manage` alone does not reach further than its holder's own
/// permissions: no administrator made, none changed.
fn no_escalation(g: &Gatehouse) {
    let (status, _) = admin_call(
        g,
        Method::POST,
        "/users",
        Some(json!({"username": "olga", "role": "ops", "password": "olga-password"})),
    );
    assert_eq!(status, 201);
    let olga = |method: Method, path: &str, body: Option<Value>| {
        call(g, method, path, Caller::Basic("olga"), body)
    };
    // Users within her reach: yes.
    let (status, made) = olga(
        Method::POST,
        "/users",
        Some(json!({"username": "u1", "role": "user"})),
    );
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        olga(Method::PATCH, "/users/u1", Some(json!({"name": "U One"}))).0,
        200
    );
    assert_eq!(olga(Method::DELETE, "/users/amy/sessions", None).0, 200);
    // Handing out, or touching, a role she does not hold: no.
    for (method, path, body) in [
        (
            Method::POST,
            "/users",
            Some(json!({"username": "u2", "role": "admin"})),
        ),
        (Method::PATCH, "/users/u1", Some(json!({"role": "admin"}))),
        (
            Method::PATCH,
            "/users/root",
            Some(json!({"password": "taken-over-1"})),
        ),
        (
            Method::PATCH,
            "/users/root",
            Some(json!({"status": "disabled"})),
        ),
        (Method::DELETE, "/users/root", None),
        (Method::DELETE, "/users/root/sessions", None),
        (Method::DELETE, "/users/root/api-keys", None),
        (Method::POST, "/users/root/reset-2fa", None),
    ] {
        let (status, e) = olga(method.clone(), path, body);
        assert_eq!(
            (status, &e["error"]),
            (403, &json!("forbidden")),
            "{method} {path}: {e}"
        );
    }
    assert_eq!(
        call(g, Method::GET, "/me", Caller::Basic("root"), None).0,
        200
    );
    // Reading is not limited.
    assert_eq!(olga(Method::GET, "/users/root", None).0, 200);
    for name in ["u1", "olga"] {
        assert_eq!(
            admin_call(g, Method::DELETE, &format!("/users/{name}"), None).0,
            204
        );
    }
}

/// A session for `user` through `api/session` (Basic → cookie), with a
/// user agent of its own.
fn session_cookie(g: &Gatehouse, user: &str, agent: &str) -> String {
    let r = client()
        .post(g.url("/_auth/api/session"))
        .basic_auth(user, Some(format!("{user}-password")))
        .header("user-agent", agent)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let value = set_cookie_value(&r, "gatehouse_session").expect("a session cookie");
    format!("gatehouse_session={value}")
}

fn with_cookie(g: &Gatehouse, method: Method, path: &str, cookie: &str) -> (u16, Value) {
    let r = client()
        .request(method, g.url(path))
        .header("cookie", cookie)
        .header("origin", format!("http://127.0.0.1:{}", g.port))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn sessions(g: &Gatehouse, cli: &str) {
    let phone = session_cookie(g, "amy", "Phone/1.0");
    let laptop = session_cookie(g, "amy", "Laptop/2.0");
    let (status, mine) = with_cookie(g, Method::GET, "/_auth/api/me/sessions", &laptop);
    assert_eq!(status, 200, "{mine}");
    let list = mine["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{mine}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["user_agent"], "Laptop/2.0");
    assert_eq!(current[0]["ip"], "127.0.0.1");
    for field in ["id", "created_at", "last_seen_at", "expires_at"] {
        assert!(current[0][field].is_string(), "{field}: {mine}");
    }

    // An administrator sees them too, and the CLI prints them.
    let (_, theirs) = admin_call(g, Method::GET, "/users/amy/sessions", None);
    assert_eq!(theirs["sessions"].as_array().unwrap().len(), 2);
    let (code, out, err) = gatehouse_cmd(&["user", "sessions", "amy", "-c", cli], None);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("Phone/1.0") && out.contains("Laptop/2.0"),
        "{out}"
    );

    // All but this one.
    let (status, done) = with_cookie(g, Method::DELETE, "/_auth/api/me/sessions", &laptop);
    assert_eq!((status, &done["revoked"]), (200, &json!(1)), "{done}");
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &phone).0, 401);
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &laptop).0, 200);

    // One by id (here: this one).
    let (_, mine) = with_cookie(g, Method::GET, "/_auth/api/me/sessions", &laptop);
    let id = mine["sessions"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/_auth/api/me/sessions/{id}");
    assert_eq!(with_cookie(g, Method::DELETE, &path, &laptop).0, 204);
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &laptop).0, 401);

    // A cookie write from elsewhere is refused.
    let tablet = session_cookie(g, "amy", "Tablet/3.0");
    let r = client()
        .delete(g.url("/_auth/api/me/sessions"))
        .header("cookie", &tablet)
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // An administrator's cookie cannot be used from another site either.
    let root = session_cookie(g, "root", "Admin/1");
    let r = client()
        .delete(g.url("/_auth/api/users/amy/sessions"))
        .header("cookie", &root)
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().unwrap()["error"], "csrf_failed");
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &tablet).0, 200);

    // Signed out everywhere by an administrator, then by the CLI.
    let (status, done) = admin_call(g, Method::DELETE, "/users/amy/sessions", None);
    assert_eq!((status, &done["revoked"]), (200, &json!(1)), "{done}");
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &tablet).0, 401);
    let again = session_cookie(g, "amy", "Again/4.0");
    let (code, out, err) = gatehouse_cmd(&["user", "signout", "amy", "-c", cli], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 session"), "{out}");
    eventually("the CLI's sign-out reaches the server", || {
        with_cookie(g, Method::GET, "/_auth/api/me", &again).0 == 401
    });
}

fn code_now(secret: &str) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, "x".into())
        .unwrap()
        .generate(now)
}

/// A token for `user` from `api/login`.
fn bearer(g: &Gatehouse, user: &str) -> String {
    let r = client()
        .post(g.url("/_auth/api/login"))
        .json(&json!({"username": user, "password": format!("{user}-password")}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().unwrap();
    format!("Bearer {}", body["token"].as_str().unwrap())
}

fn post(g: &Gatehouse, path: &str, auth: &str, method: Method, body: Value) -> (u16, Value) {
    let r = client()
        .request(method, g.url(path))
        .header("authorization", auth)
        .json(&body)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

/// The store URL a CLI config file names.
fn s_store_url(cli: &str) -> String {
    let text = std::fs::read_to_string(cli).unwrap();
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("url: \"") && !l.contains("echo:"))
        .expect("store.url");
    line.trim()
        .trim_start_matches("url: ")
        .trim_matches('"')
        .to_owned()
}

/// Every kind of event, caused through the real endpoints, is on the trail.
fn audit_trail(g: &Gatehouse, cli: &str) {
    // Sign-in failure and success; sign-out.
    let r = client()
        .post(g.url("/_auth/api/login"))
        .header("user-agent", "AuditProbe/1")
        .json(&json!({"username": "vera", "password": "wrong"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    let token = bearer(g, "vera");
    assert_eq!(
        post(g, "/_auth/api/logout", &token, Method::POST, json!({})).0,
        200
    );
    // Second factor on and off; API key made and revoked; password changed.
    let token = bearer(g, "vera");
    let (status, e) = post(g, "/_auth/api/me/2fa", &token, Method::POST, json!({}));
    assert_eq!(status, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let code = code_now(&secret);
    let (status, _) = post(
        g,
        "/_auth/api/me/2fa/confirm",
        &token,
        Method::POST,
        json!({"code": code}),
    );
    assert_eq!(status, 200);
    let (status, _) = post(
        g,
        "/_auth/api/me/2fa",
        &token,
        Method::DELETE,
        json!({"password": "vera-password"}),
    );
    assert_eq!(status, 200);
    let (status, key) = post(
        g,
        "/_auth/api/me/api-keys",
        &token,
        Method::POST,
        json!({"name": "ci"}),
    );
    assert_eq!(status, 201, "{key}");
    let path = format!("/_auth/api/me/api-keys/{}", key["id"]);
    assert_eq!(post(g, &path, &token, Method::DELETE, json!({})).0, 204);
    let (status, _) = post(
        g,
        "/_auth/api/me/password",
        &token,
        Method::POST,
        json!({"old_password": "vera-password", "new_password": "vera-password-2"}),
    );
    assert_eq!(status, 200);
    admin_call(
        g,
        Method::PATCH,
        "/users/vera",
        Some(json!({"password": "vera-password"})),
    );
    // An administrator resets a second factor.
    let token = bearer(g, "amy");
    let (_, e) = post(g, "/_auth/api/me/2fa", &token, Method::POST, json!({}));
    let code = code_now(e["secret"].as_str().unwrap());
    post(
        g,
        "/_auth/api/me/2fa/confirm",
        &token,
        Method::POST,
        json!({"code": code}),
    );
    assert_eq!(
        admin_call(g, Method::POST, "/users/amy/reset-2fa", None).0,
        200
    );

    // Registration through an invitation (the CLI prints its link).
    let (code, out, err) = gatehouse_cmd(
        &["invite", "create", "--email", "reg@example.test", "-c", cli],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let token = out
        .split("invitation=")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the invitation link")
        .to_owned();
    let r = client()
        .post(g.url("/_auth/api/register"))
        .json(&json!({"username": "reg", "password": "reg-password", "invitation": token}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // A password reset with a mailed link (put in the store as the mail would).
    let store_url = s_store_url(cli);
    let link = "a-reset-link-token-for-the-audit-test";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let st = gatehouse::store::Store::open(&store_url).await.unwrap();
        let now = gatehouse::store::unix_now();
        st.create_account_token(
            gatehouse::store::AccountToken {
                token_hash: gatehouse::session::id_hash(link),
                id: format!("reset-{}", free_port()),
                purpose: gatehouse::store::TokenPurpose::Reset,
                username: Some("reg".into()),
                email: Some("reg@example.test".into()),
                role: None,
                password_hash: None,
                created_by: None,
                created_at: now,
                expires_at: now + 3600,
                used_at: None,
            },
            None,
        )
        .await
        .unwrap();
    });
    let r = client()
        .post(g.url("/_auth/api/password-reset/confirm"))
        .json(&json!({"token": link, "new_password": "reg-password-2"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);

    let events = |query: &str| -> Vec<Value> {
        let (status, page) = admin_call(g, Method::GET, &format!("/audit?{query}"), None);
        assert_eq!(status, 200, "{page}");
        page["events"].as_array().unwrap().clone()
    };
    let wanted = [
        ("sign_in", "failure", "vera"),
        ("sign_in", "success", "vera"),
        ("sign_out", "success", "vera"),
        ("2fa.enable", "success", "vera"),
        ("2fa.disable", "success", "vera"),
        ("api_key.create", "success", "vera"),
        ("api_key.revoke", "success", "vera"),
        ("password.change", "success", "vera"),
        ("user.create", "success", "root"),
        ("user.update", "success", "root"),
        ("user.delete", "success", "root"),
        ("sessions.revoke", "success", "root"),
        ("2fa.reset", "success", "root"),
        ("user.create", "success", "cli"),
        ("invitation.create", "success", "cli"),
        ("register", "success", "reg"),
        ("password.reset", "success", "reg"),
    ];
    let missing = |all: &[Value]| -> Vec<(&str, &str, &str)> {
        wanted
            .iter()
            .filter(|(action, outcome, actor)| {
                !all.iter().any(|e| {
                    e["action"] == *action && e["outcome"] == *outcome && e["actor"] == *actor
                })
            })
            .copied()
            .collect()
    };
    // The writer stores events in batches, soon after they happen.
    let mut all = Vec::new();
    eventually("every kind of event is on the trail", || {
        all = events("per_page=500");
        missing(&all).is_empty()
    });
    let failure = all
        .iter()
        .find(|e| e["action"] == "sign_in" && e["outcome"] == "failure" && e["actor"] == "vera")
        .unwrap();
    assert_eq!(failure["details"]["reason"], "invalid_credentials");
    assert_eq!(failure["user_agent"], "AuditProbe/1");
    assert_eq!(failure["ip"], "127.0.0.1");
    // An admin change says before → after.
    let change = all
        .iter()
        .find(|e| {
            e["action"] == "user.update"
                && e["target"] == "target"
                && e["details"]["after"]["role"] == "viewer"
        })
        .expect("the role change of `target`");
    assert_eq!(change["details"]["before"]["role"], "user");

    // A password change is said, never shown.
    let text = serde_json::to_string(&all).unwrap();
    assert!(
        !text.contains("$argon2"),
        "a password hash on the audit trail"
    );
    assert!(
        !text.contains("amy-new-password"),
        "a password on the audit trail"
    );
    let set = all
        .iter()
        .find(|e| e["action"] == "user.update" && e["details"]["after"]["password"].is_string())
        .expect("the administrator's password change");
    assert_eq!(set["details"]["after"]["password"], "changed");

    // Filters.
    let only = events("action=2fa.reset");
    assert!(!only.is_empty() && only.iter().all(|e| e["action"] == "2fa.reset"));
    let amy = events("user=amy");
    assert!(amy
        .iter()
        .all(|e| e["actor"] == "amy" || e["target"] == "amy"));
    assert!(events("since=2999-01-01").is_empty());
    assert!(!events("since=1h").is_empty());
    assert!(events("until=2000-01-01").is_empty());
    let (status, e) = admin_call(g, Method::GET, "/audit?since=yesterday", None);
    assert_eq!((status, &e["field"]), (400, &json!("since")));
    let (_, page) = admin_call(g, Method::GET, "/audit?per_page=2&page=2", None);
    assert_eq!(page["events"].as_array().unwrap().len(), 2);
    assert!(page["total"].as_i64().unwrap() > 4);

    // The CLI prints the same trail.
    let (code, out, err) = gatehouse_cmd(
        &["audit", "--user", "vera", "--since", "1h", "-c", cli],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2fa.enable") && out.contains("vera"), "{out}");
    let (code, out, _) = gatehouse_cmd(
        &["audit", "--action", "sign_out", "--json", "-c", cli],
        None,
    );
    assert_eq!(code, 0);
    let first: Value = serde_json::from_str(out.lines().next().expect("a line")).unwrap();
    assert_eq!(first["action"], "sign_out");
    let (code, _, err) = gatehouse_cmd(&["audit", "--since", "soon", "-c", cli], None);
    assert_eq!(code, 2);
    assert!(err.contains("--since"), "{err}");
}

/// A page with `cookie` (a session): (status, HTML, the CSRF cookie and
/// form token when the page has a form).
fn page_with(g: &Gatehouse, path: &str, cookie: &str) -> (u16, String, Option<(String, String)>) {
    let r = client()
        .get(g.url(path))
        .header("cookie", cookie)
        .send()
        .unwrap();
    let status = r.status().as_u16();
    let csrf_cookie = set_cookie_value(&r, "gatehouse_csrf");
    let html = r.text().unwrap();
    let token = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned);
    let csrf = csrf_cookie.zip(token);
    (status, html, csrf)
}

/// POST a form with `cookie` and the CSRF pair; answers (status, Location).
fn post_form(
    g: &Gatehouse,
    path: &str,
    cookie: &str,
    csrf: Option<&(String, String)>,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut cookies = cookie.to_owned();
    if let Some((c, token)) = csrf {
        form.push(("csrf".into(), token.clone()));
        cookies.push_str(&format!("; gatehouse_csrf={c}"));
    }
    let r = client()
        .post(g.url(path))
        .header("cookie", cookies)
        .header("origin", format!("http://127.0.0.1:{}", g.port))
        .form(&form)
        .send()
        .unwrap();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (r.status().as_u16(), location)
}

/// The admin pages: sign-in first, `users:get` to see, `users:manage` and
/// the CSRF token to act.
fn admin_pages(g: &Gatehouse) {
    let r = client().get(g.url("/_auth/admin/users")).send().unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/_auth/login?rd="), "{location}");

    let amy = session_cookie(g, "amy", "Pages/1");
    let (status, html, _) = page_with(g, "/_auth/admin/users", &amy);
    assert_eq!(status, 403);
    assert!(html.contains("users:get") && html.contains("amy"), "{html}");
    let (_, account, _) = page_with(g, "/_auth/account", &amy);
    assert!(
        !account.contains("admin-link"),
        "no link for those who may not"
    );

    // A reader sees, but has no buttons, and their posts are refused.
    let vera = session_cookie(g, "vera", "Pages/1");
    let (status, html, csrf) = page_with(g, "/_auth/admin/users", &vera);
    assert_eq!(status, 200);
    assert!(
        html.contains(">amy<") && !html.contains("new-user"),
        "{html}"
    );
    let (status, html, _) = page_with(g, "/_auth/admin/users/amy", &vera);
    assert_eq!(status, 200);
    assert!(!html.contains("id=\"disable\""), "no buttons for a reader");
    let (_, account, _) = page_with(g, "/_auth/account", &vera);
    assert!(account.contains("admin-link"), "a link for those who may");
    let (status, _) = post_form(
        g,
        "/_auth/admin/users/amy",
        &vera,
        csrf.as_ref(),
        &[("status", "disabled")],
    );
    assert_eq!(status, 403);
    assert_eq!(
        call(g, Method::GET, "/users/amy", Caller::Basic("root"), None).1["status"],
        "enabled"
    );

    // An administrator acts; without the CSRF token nothing happens.
    let root = session_cookie(g, "root", "Pages/1");
    let (status, html, csrf) = page_with(g, "/_auth/admin/users/amy", &root);
    assert_eq!(status, 200);
    assert!(html.contains("id=\"disable\""), "{html}");
    let (status, _) = post_form(
        g,
        "/_auth/admin/users/amy",
        &root,
        None,
        &[("status", "disabled")],
    );
    assert_eq!(status, 403, "no CSRF token");
    assert_eq!(
        admin_call(g, Method::GET, "/users/amy", None).1["status"],
        "enabled"
    );
    let (status, location) = post_form(
        g,
        "/_auth/admin/users/amy",
        &root,
        csrf.as_ref(),
        &[("status", "disabled")],
    );
    assert_eq!(status, 303);
    assert!(location.ends_with("?done=updated"), "{location}");
    assert_eq!(
        admin_call(g, Method::GET, "/users/amy", None).1["status"],
        "disabled"
    );
    let (status, _) = post_form(
        g,
        "/_auth/admin/users/amy",
        &root,
        csrf.as_ref(),
        &[("status", "enabled")],
    );
    assert_eq!(status, 303);

    // Create through the form; a bad field re-shows the form with the reason.
    let (_, _, csrf) = page_with(g, "/_auth/admin/users/new", &root);
    let (status, _) = post_form(
        g,
        "/_auth/admin/users",
        &root,
        csrf.as_ref(),
        &[("username", "pia"), ("role", "ghost")],
    );
    assert_eq!(status, 400);
    let (status, location) = post_form(
        g,
        "/_auth/admin/users",
        &root,
        csrf.as_ref(),
        &[
            ("username", "pia"),
            ("role", "user"),
            ("type", "api"),
            ("status", "enabled"),
        ],
    );
    assert_eq!(status, 303, "{location}");
    let (_, pia) = admin_call(g, Method::GET, "/users/pia", None);
    assert_eq!(
        (&pia["type"], &pia["role"]),
        (&json!("api"), &json!("user"))
    );
    // Deleting needs the box ticked.
    let path = format!("/_auth/admin/users/{}/delete", pia["id"]);
    let (status, _) = post_form(g, &path, &root, csrf.as_ref(), &[]);
    assert_eq!(status, 400);
    let (status, location) = post_form(g, &path, &root, csrf.as_ref(), &[("confirm", "yes")]);
    assert_eq!((status, location.as_str()), (303, "/_auth/admin/users"));
    assert_eq!(admin_call(g, Method::GET, "/users/pia", None).0, 404);
    // The last administrator cannot be disabled here either.
    let (status, _) = post_form(
        g,
        "/_auth/admin/users/root",
        &root,
        csrf.as_ref(),
        &[("status", "disabled")],
    );
    assert_eq!(status, 409);

    // Your own sessions on the account page: listed, and one signed out.
    let other = session_cookie(g, "root", "OtherBrowser/9");
    let (_, account, csrf) = page_with(g, "/_auth/account", &root);
    assert!(
        account.contains("OtherBrowser") && account.contains("this session"),
        "{account}"
    );
    let (status, _) = post_form(
        g,
        "/_auth/account/sessions/revoke",
        &root,
        csrf.as_ref(),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &other).0, 401);
    assert_eq!(with_cookie(g, Method::GET, "/_auth/api/me", &root).0, 200);
}

fn administration(store_url: &str) {
    let s = site(store_url, "");
    admin_pages(&s.g);
    permission_matrix(&s.g);
    users_api(&s.g);
    read_only_users(&s.g);
    last_admin(&s.g);
    no_escalation(&s.g);
    sessions(&s.g, &s.cli);
    audit_trail(&s.g, &s.cli);
    let _ = &s.yaml;
}

#[test]
fn administration_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    administration(&format!("sqlite://{}/admin.db", dir.path().display()));
}

#[test]
fn administration_on_postgres() {
    let Some(url) = postgres_or_skip("admin") else {
        return;
    };
    administration(&url);
}

/// Two replicas on one store: a user disabled through A is refused by B,
/// whose cache held them, within a poll of the change feed.
fn replicas(store_url: &str) {
    let a = site(store_url, "");
    let b = Gatehouse::start(&a.yaml);
    let me = |g: &Gatehouse| call(g, Method::GET, "/me", Caller::Basic("amy"), None).0;
    assert_eq!(me(&b), 200);
    assert_eq!(me(&b), 200, "cached now");
    let (status, _) = admin_call(
        &a.g,
        Method::PATCH,
        "/users/amy",
        Some(json!({"status": "disabled"})),
    );
    assert_eq!(status, 200);
    let took = eventually("replica B refuses the disabled user", || me(&b) == 401);
    println!("a change on replica A reached replica B after {took:?}");
    let (status, _) = admin_call(&a.g, Method::DELETE, "/users/amy", None);
    assert_eq!(status, 204);
    let (status, e) = admin_call(&b, Method::GET, "/users/amy", None);
    assert_eq!(status, 404, "{e}");
}

#[test]
fn replicas_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    replicas(&format!("sqlite://{}/shared.db", dir.path().display()));
}

#[test]
fn replicas_on_postgres() {
    let Some(url) = postgres_or_skip("admin_replicas") else {
        return;
    };
    replicas(&url);
}

#[test]
fn audit_settings_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    let check = |audit: &str| {
        std::fs::write(
            &path,
            format!("upstream:\n  url: \"echo:\"\naudit:\n{audit}"),
        )
        .unwrap();
        gatehouse_cmd(&["check-config", "-c", &path.display().to_string()], None)
    };
    let (code, _, err) = check("  retention: 30m\n");
    assert_eq!(code, 1);
    assert!(err.contains("audit.retention"), "{err}");
    let (code, _, err) = check("  log_denials: yes please\n");
    assert_eq!(code, 1);
    assert!(err.contains("log_denials"), "{err}");
    let (code, _, err) = check("  retention: 7d\n  log_denials: true\n");
    assert_eq!(code, 0, "{err}");
}

/// `gatehouse serve` with JSON logs on a pipe: the lines it wrote so far.
struct Logged {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
    port: u16,
}

impl Logged {
    fn start(dir: &tempfile::TempDir, extra: &str) -> Logged {
        use std::io::BufRead;
        let port = free_port();
        let store = format!("sqlite://{}/log.db", dir.path().display());
        let yaml = store_yaml(&store, extra)
            .replace("{port}", &port.to_string())
            .replace("{metrics_port}", &free_port().to_string());
        let path = dir.path().join(format!("log-{port}.yaml"));
        std::fs::write(&path, yaml).unwrap();
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["serve", "-c", &path.display().to_string()])
            .env("GATEHOUSE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(v);
                }
            }
        });
        let url = format!("http://127.0.0.1:{port}/_auth/healthz");
        eventually("the server answers", || {
            client().get(&url).send().is_ok_and(|r| r.status() == 200)
        });
        Logged { child, lines, port }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The lines whose `fields` match every (key, value) of `want`.
    fn matching(&self, want: &[(&str, &str)]) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| {
                want.iter()
                    .all(|(k, v)| l["fields"][*k].as_str() == Some(*v))
            })
            .cloned()
            .collect()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn events_and_sampled_denials_are_structured_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let on = Logged::start(&dir, "audit:\n  log_denials: true\n");
    for _ in 0..3 {
        let r = client().get(on.url("/private/page")).send().unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = client()
        .post(on.url("/_auth/api/login"))
        .json(&json!({"username": "ghost", "password": "nope"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    eventually("the denial lines", || {
        on.matching(&[("action", "request.denied"), ("path", "/private/page")])
            .len()
            == 3
    });
    let denial = &on.matching(&[("action", "request.denied")])[0];
    assert_eq!(denial["fields"]["reason"], "no_credentials");
    assert_eq!(denial["fields"]["status"], 401);
    assert_eq!(denial["fields"]["ip"], "127.0.0.1");
    eventually("the sign-in failure line", || {
        !on.matching(&[
            ("action", "sign_in"),
            ("outcome", "failure"),
            ("actor", "ghost"),
        ])
        .is_empty()
    });

    // Off (the default): refusals are counted, not logged.
    let off = Logged::start(&dir, "");
    let r = client().get(off.url("/private/page")).send().unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(off.url("/_auth/api/login"))
        .json(&json!({"username": "ghost", "password": "nope"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    eventually("the sign-in failure line", || {
        !off.matching(&[("action", "sign_in")]).is_empty()
    });
    assert!(off.matching(&[("action", "request.denied")]).is_empty());
}

/// `api/explain`: 401 for nobody, 403 without `policy:explain`, and for an
/// API key holding only that permission, what the server answers a request
/// (compared with the real answer), for stored users too.
#[test]
fn explain_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/explain.db", dir.path().display());
    let s = site(
        &url,
        "rules:\n  - path: /public/**\n    policy: public\n  - path: /admin/**\n    permission: \"admin:access\"\n",
    );
    let g = &s.g;
    let path = "/explain?method=GET&url=/admin/x&user=amy";
    assert_eq!(call(g, Method::GET, path, Caller::Anonymous, None).0, 401);
    let (status, body) = call(g, Method::GET, path, Caller::Basic("vera"), None);
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or("")
            .contains("policy:explain"),
        "{body}"
    );
    let (code, key, err) = gatehouse_cmd(
        &[
            "apikey",
            "create",
            "--user",
            "root",
            "--permissions",
            "policy:explain",
            "-c",
            &s.cli,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let explain = |query: &str| {
        let r = client()
            .get(g.url(&format!("/_auth/api/explain?{query}")))
            .header("x-api-key", key.trim())
            .send()
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };

    // amy is stored, with the role `user`: the server refuses her /admin/x.
    let (status, body) = explain("method=GET&url=/admin/x&user=amy");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "deny", "{body}");
    assert_eq!(body["status"], 403, "{body}");
    assert_eq!(body["reason"], "forbidden", "{body}");
    assert_eq!(body["rule"], "/admin/**", "{body}");
    assert_eq!(body["path"], "/admin/x", "{body}");
    assert_eq!(
        body["permissions_needed"],
        json!(["admin:access"]),
        "{body}"
    );
    assert_eq!(body["user"]["username"], "amy", "{body}");
    assert_eq!(body["user"]["source"], "store", "{body}");
    assert_eq!(body["user"]["permissions"], json!(["echo:read"]), "{body}");
    let real = client()
        .get(g.url("/admin/x"))
        .basic_auth("amy", Some("amy-password"))
        .send()
        .unwrap();
    assert_eq!(real.status().as_u16(), 403);

    // A dot segment: 400 `invalid_path`, as the server answers it.
    let (status, body) = explain("url=/public/../admin/x");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["decision"].as_str(), body["status"].as_u64()),
        (Some("deny"), Some(400)),
        "{body}"
    );
    assert_eq!(body["reason"], "invalid_path", "{body}");
    assert!(body["rule"].is_null() && body["path"].is_null(), "{body}");
    let real = raw_request(
        g.addr(),
        "GET /public/../admin/x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    assert!(
        real.starts_with("HTTP/1.1 400") && real.contains("\"error\":\"invalid_path\""),
        "{real}"
    );

    // HEAD is judged as GET too; root (admin, `*`) may; nobody may not.
    let (_, body) = explain("method=head&url=/admin/x&user=root");
    assert_eq!(body["method"], "HEAD", "{body}");
    assert_eq!(body["also_read"], json!(["GET /admin/x"]), "{body}");
    assert_eq!(
        (body["decision"].as_str(), body["status"].as_u64()),
        (Some("allow"), Some(200)),
        "{body}"
    );
    let (_, body) = explain("url=/admin/x");
    assert_eq!(
        (body["status"].as_u64(), body["reason"].as_str()),
        (Some(401), Some("unauthorized")),
        "{body}"
    );
    assert!(body["user"].is_null(), "{body}");

    // Wrong questions are the caller's: no url, no such user, no method.
    assert_eq!(explain("method=GET").0, 400);
    let (status, body) = explain("url=/x&user=ghost");
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    assert_eq!(explain("method=G%20T&url=/x").0, 400);
}
