//! Single sign-on against real OpenID providers: two `oidc-provider`
//! processes at once (each its own issuer, client, users and groups), the
//! whole code flow over HTTP through their own login and consent pages, the
//! real binary as relying party. Found through `GATEHOUSE_TEST_OIDC_PROVIDER`
//! (`.ci/run` installs the provider and sets it); without it these SKIP.

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use common::*;
use oidc::*;
use std::path::Path;

/// One simulated browser: the provider's cookies in `provider`, Gatehouse's
/// session and binding cookies here.
struct Browser {
    provider: ProviderCookies,
    session: Option<String>,
    binding: Option<String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            provider: ProviderCookies::new(),
            session: None,
            binding: None,
        }
    }

    fn cookie_header(&self) -> String {
        let mut parts = Vec::new();
        if let Some(b) = &self.binding {
            parts.push(format!("gatehouse_session_sso={b}"));
        }
        if let Some(s) = &self.session {
            parts.push(format!("gatehouse_session={s}"));
        }
        parts.join("; ")
    }

    /// Click "Sign in with {provider}" and sign in there as `login`; the
    /// callback URL the provider sends the browser back to (not yet visited).
    fn go_to_provider(&mut self, g: &Gatehouse, provider: &str, login: &str, rd: &str) -> String {
        let r = client()
            .get(g.url(&format!("/_auth/oidc/{provider}/authorize?rd={rd}")))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap();
        assert_eq!(r.status(), 302, "authorize answers 302 to the provider");
        if let Some(b) = set_cookie_value(&r, "gatehouse_session_sso") {
            self.binding = Some(b);
        }
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        for p in [
            "state=",
            "nonce=",
            "code_challenge=",
            "code_challenge_method=S256",
        ] {
            assert!(to.contains(p), "{p} missing from {to}");
        }
        sign_in_at_provider(
            &client(),
            &self.provider,
            &to,
            login,
            &g.url("/_auth/oidc/callback"),
        )
    }

    /// Visit the callback; keeps the session cookie it sets.
    fn back(&mut self, callback: &str) -> reqwest::blocking::Response {
        let r = client()
            .get(callback)
            .header("cookie", self.cookie_header())
            .header("accept", "text/html")
            .send()
            .unwrap();
        if let Some(s) = set_cookie_value(&r, "gatehouse_session") {
            self.session = Some(s);
        }
        r
    }

    fn get(&self, g: &Gatehouse, path: &str) -> reqwest::blocking::Response {
        client()
            .get(g.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .unwrap()
    }

    fn me(&self, g: &Gatehouse) -> serde_json::Value {
        let r = self.get(g, "/_auth/api/me");
        assert_eq!(r.status(), 200, "api/me with the SSO session");
        r.json().unwrap()
    }
}

fn provider_yaml(id: &str, issuer: &str, extra: &str) -> String {
    format!(
        "    - id: {id}\n      display_name: \"{id} SSO\"\n      issuer: \"{issuer}\"\n      client_id: gatehouse-{id}\n      client_secret_file: \"{{secret_{id}}}\"\n      scopes: [openid, email, profile, groups]\n{extra}"
    )
}

/// Gatehouse on `port` with these providers, its store in `dir`.
fn start_gatehouse(port: u16, dir: &Path, providers: &[String], extra: &str) -> Gatehouse {
    let store = format!("sqlite://{}", dir.join("sso.db").display());
    let mut yaml = store_yaml(&store, extra);
    yaml.push_str("oidc:\n  providers:\n");
    for p in providers {
        yaml.push_str(p);
    }
    for id in ["corp", "partner"] {
        let file = dir.join(format!("{id}.secret"));
        std::fs::write(&file, format!("secret-of-{id}\n")).unwrap();
        yaml = yaml.replace(&format!("{{secret_{id}}}"), &file.display().to_string());
    }
    Gatehouse::start_on(port, &yaml, &[])
}

fn corp_options(port: u16, alice_groups: &[&str]) -> OpOptions {
    OpOptions::new(
        "gatehouse-corp",
        "secret-of-corp",
        &format!("http://127.0.0.1:{port}/_auth/oidc/callback"),
    )
    .post_logout_redirect_uri(&format!("http://127.0.0.1:{port}/_auth/login"))
    .backchannel_logout_uri(&format!(
        "http://127.0.0.1:{port}/_auth/oidc/backchannel-logout"
    ))
    .user(
        OpUser::new("alice")
            .sub("corp-alice")
            .email("alice@corp.test")
            .groups(alice_groups),
    )
    .user(
        OpUser::new("carol")
            .sub("corp-carol")
            .email("carol@corp.test")
            .groups(&["outsiders"]),
    )
}

const CORP_RULES: &str =
    "      role_map: { admins: admin, devs: editor }\n      allowed_groups: [admins, devs]\n";
const ROLES: &str = "roles:\n  editor: [\"posts:*\"]\n";

#[test]
fn two_providers_sign_in_link_refuse_and_log_out() {
    let Some(op_dir) = oidc_provider_dir_or_skip("two_providers_sign_in_link_refuse_and_log_out")
    else {
        return;
    };
    let port = free_port();
    let mut corp = OidcProvider::start(
        &op_dir,
        free_port(),
        &corp_options(port, &["admins", "devs"]),
    );
    let partner = OidcProvider::start(
        &op_dir,
        free_port(),
        &OpOptions::new(
            "gatehouse-partner",
            "secret-of-partner",
            &format!("http://127.0.0.1:{port}/_auth/oidc/callback"),
        )
        .groups_in_userinfo_only()
        .user(
            OpUser::new("dave")
                .sub("p-dave")
                .email("dave@example.test")
                .email_verified(true)
                .groups(&["devs"]),
        )
        .user(
            OpUser::new("eve")
                .sub("p-eve")
                .email("eve@example.test")
                .email_verified(false),
        ),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("sso.db").display());
    add_store_user(
        &store,
        dir.path(),
        "dave-local",
        "dave's own password",
        &["--email", "dave@example.test"],
    );
    add_store_user(
        &store,
        dir.path(),
        "eve-local",
        "eve's own password",
        &["--email", "eve@example.test"],
    );
    let providers = [
        provider_yaml("corp", &corp.issuer(), CORP_RULES),
        provider_yaml(
            "partner",
            &partner.issuer(),
            "      role_map: { devs: editor }\n      link_existing_by_email: true\n      auto_create_users: false\n",
        ),
    ];
    let g = start_gatehouse(port, dir.path(), &providers, ROLES);

    // Both providers are offered, on the page and to programs.
    let page = client()
        .get(g.url("/_auth/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("Sign in with corp SSO") && page.contains("Sign in with partner SSO"),
        "{page}"
    );
    assert!(page.contains("/oidc/partner/authorize"), "{page}");
    // Sent to the sign-in page from a deep link, the buttons keep it.
    let r = client()
        .get(g.url("/app/deep?x=1&y=2"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    let login = r.headers()["location"].to_str().unwrap().to_owned();
    let r = client().get(&login).send().unwrap();
    assert_eq!(r.status(), 200, "{login}");
    let page = r.text().unwrap();
    let encoded = format!("?rd=http%3A%2F%2F127.0.0.1%3A{port}%2Fapp%2Fdeep%3Fx%3D1%26y%3D2");
    assert!(page.contains(&encoded), "{encoded} not in {page}");
    let info: serde_json::Value = client()
        .get(g.url("/_auth/api/sso/info"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(info["enabled"], true);
    assert_eq!(info["providers"][1]["id"], "partner");
    assert_eq!(
        info["providers"][0]["login_url"],
        "/_auth/oidc/corp/authorize"
    );

    // alice at corp: an account is created with the role her groups map to.
    let rd = g.url("/after-sso");
    let mut a = Browser::new();
    let callback = a.go_to_provider(&g, "corp", "alice", &rd);
    let r = a.back(&callback);
    assert_eq!(r.status(), 303, "{}", r.text().unwrap_or_default());
    assert_eq!(r.headers()["location"], rd.as_str());
    let me = a.me(&g);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["role"], "admin", "admins maps first: {me}");
    assert_eq!(me["email"], "alice@corp.test");
    assert_eq!(me["sso"]["provider"], "corp");
    let first_id = me["id"].clone();
    assert!(first_id.is_i64(), "a stored account: {me}");
    let echo = echo_json(&a.get(&g, "/app").text().unwrap());
    assert_eq!(echo["headers"]["remote-user"], "alice");

    // The state is single-use: the same callback again finds nothing.
    let r = a.back(&callback);
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("Sign-in expired. Start again."));
    // A made-up state, and a real one from another browser, are refused too.
    let r = a.back(&g.url("/_auth/oidc/callback?state=made-up&code=made-up"));
    assert_eq!(r.status(), 400);
    let mut thief = Browser::new();
    let stolen = Browser::new().go_to_provider(&g, "corp", "alice", &rd);
    let r = thief.back(&stolen);
    assert_eq!(
        r.status(),
        400,
        "a callback only works in the browser that started it"
    );
    assert!(thief.session.is_none());

    // A second sign-in reuses the account.
    let mut a2 = Browser::new();
    let callback = a2.go_to_provider(&g, "corp", "alice", &rd);
    assert_eq!(a2.back(&callback).status(), 303);
    assert_eq!(a2.me(&g)["id"], first_id);

    // carol is outside allowed_groups: 403, and no session.
    let mut c = Browser::new();
    let callback = c.go_to_provider(&g, "corp", "carol", &rd);
    let r = c.back(&callback);
    assert_eq!(r.status(), 403);
    assert!(c.session.is_none());
    assert!(r.text().unwrap().contains("may not sign in here"));

    // dave's verified address links him to his existing account; groups come
    // from userinfo (this provider leaves them out of the ID token).
    let mut d = Browser::new();
    let callback = d.go_to_provider(&g, "partner", "dave", &rd);
    assert_eq!(d.back(&callback).status(), 303);
    let me = d.me(&g);
    assert_eq!(me["username"], "dave-local");
    assert_eq!(
        me["role"], "editor",
        "devs from userinfo maps to editor: {me}"
    );
    assert_eq!(me["sso"]["provider"], "partner");

    // eve's address is not verified: never linked, and not created here.
    let mut e = Browser::new();
    let callback = e.go_to_provider(&g, "partner", "eve", &rd);
    let r = e.back(&callback);
    assert_eq!(r.status(), 403);
    assert!(e.session.is_none());

    // A session from SSO trades for a Gatehouse JWT (same origin only).
    let r = client()
        .post(g.url("/_auth/api/token"))
        .header("cookie", a.cookie_header())
        .header("origin", format!("http://127.0.0.1:{port}"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let token = r.json::<serde_json::Value>().unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client()
        .get(g.url("/app"))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(
        echo_json(&r.text().unwrap())["headers"]["remote-user"],
        "alice"
    );
    let r = client()
        .post(g.url("/_auth/api/token"))
        .header("cookie", a.cookie_header())
        .header("origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);

    // RP-initiated logout: the local session ends, then the provider's.
    let (csrf_cookie, csrf, _) = csrf_form(&g, "/_auth/logout");
    let r = client()
        .post(g.url("/_auth/logout"))
        .header(
            "cookie",
            format!("{}; gatehouse_csrf={csrf_cookie}", a.cookie_header()),
        )
        .form(&[("csrf", csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(r.status(), 303);
    let end = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(end.starts_with(&corp.url("/session/end")), "{end}");
    assert!(
        end.contains("id_token_hint=") && end.contains("client_id=gatehouse-corp"),
        "{end}"
    );
    assert_eq!(
        a.get(&g, "/_auth/api/me").status(),
        401,
        "the local session is over"
    );
    let after = end_session_at_provider(&client(), &a.provider, &end);
    assert!(after.starts_with(&g.url("/_auth/login")), "{after}");

    // Back-channel logout: alice's other live session (a2) ends when her
    // provider session ends at the provider, on the provider's word alone.
    assert_eq!(a2.get(&g, "/_auth/api/me").status(), 200);
    end_session_at_provider(&client(), &a2.provider, &corp.url("/session/end"));
    eventually("the back-channel logout ends the session", || {
        a2.get(&g, "/_auth/api/me").status() == 401
    });
    // A forged logout token is refused and ends nothing.
    let r = client()
        .post(g.url("/_auth/oidc/backchannel-logout"))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.")])
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(d.get(&g, "/_auth/api/me").status(), 200);

    // The provider goes away mid-sign-in: 502; once it is back, sign-in works,
    // and sync_role takes away what alice's groups no longer give.
    let mut b = Browser::new();
    let callback = b.go_to_provider(&g, "corp", "alice", &rd);
    corp.stop();
    let r = b.back(&callback);
    assert_eq!(r.status(), 502);
    assert!(b.session.is_none());
    corp.restart_with(&corp_options(port, &["devs"]));
    let mut b = Browser::new();
    let callback = b.go_to_provider(&g, "corp", "alice", &rd);
    assert_eq!(b.back(&callback).status(), 303);
    let me = b.me(&g);
    assert_eq!(me["id"], first_id);
    assert_eq!(
        me["role"], "editor",
        "admin is gone with the admins group: {me}"
    );
    drop(corp);

    let metrics = g.metrics();
    for line in [
        "gatehouse_sso_sign_ins_total{outcome=\"success\",provider=\"corp\"}",
        "gatehouse_sso_sign_ins_total{outcome=\"forbidden\",provider=\"corp\"}",
        "gatehouse_sso_sign_ins_total{outcome=\"unreachable\",provider=\"corp\"}",
        "gatehouse_sso_sign_ins_total{outcome=\"success\",provider=\"partner\"}",
    ] {
        assert!(metrics.contains(line), "{line} missing:\n{metrics}");
    }
}

#[test]
fn a_provider_down_at_start_does_not_stop_gatehouse() {
    let Some(op_dir) =
        oidc_provider_dir_or_skip("a_provider_down_at_start_does_not_stop_gatehouse")
    else {
        return;
    };
    let port = free_port();
    let op_port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let issuer = format!("http://127.0.0.1:{op_port}");
    let g = start_gatehouse(port, dir.path(), &[provider_yaml("corp", &issuer, "")], "");
    let r = client()
        .get(g.url("/_auth/oidc/corp/authorize"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 502);
    assert!(r.text().unwrap().contains("cannot be reached"));
    // An unknown provider is a 404, not a 502.
    assert_eq!(
        client()
            .get(g.url("/_auth/oidc/nope/authorize"))
            .send()
            .unwrap()
            .status(),
        404
    );

    let _corp = OidcProvider::start(&op_dir, op_port, &corp_options(port, &["devs"]));
    eventually("sign-in works once the provider is up", || {
        client()
            .get(g.url("/_auth/oidc/corp/authorize"))
            .send()
            .unwrap()
            .status()
            == 302
    });
    let mut a = Browser::new();
    let callback = a.go_to_provider(&g, "corp", "alice", &g.url("/"));
    assert_eq!(a.back(&callback).status(), 303);
    assert_eq!(a.me(&g)["username"], "alice");
}

#[test]
fn auto_redirect_and_no_password_form() {
    let Some(op_dir) = oidc_provider_dir_or_skip("auto_redirect_and_no_password_form") else {
        return;
    };
    let port = free_port();
    let corp = OidcProvider::start(&op_dir, free_port(), &corp_options(port, &["devs"]));
    let dir = tempfile::tempdir().unwrap();
    let g = start_gatehouse(
        port,
        dir.path(),
        &[provider_yaml("corp", &corp.issuer(), "")],
        "portal:\n  password_login: false\n",
    );
    let page = client()
        .get(g.url("/_auth/login"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("Sign in with corp SSO"));
    assert!(
        !page.contains("name=\"password\""),
        "the password form is hidden"
    );
    g.stop();

    let dir = tempfile::tempdir().unwrap();
    let mut providers = provider_yaml("corp", &corp.issuer(), "");
    providers.push_str("  auto_redirect: corp\n");
    let g = start_gatehouse(free_port(), dir.path(), &[providers], "");
    let rd = g.url("/deep/link");
    let r = client()
        .get(g.url(&format!("/_auth/login?rd={rd}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with("/_auth/oidc/corp/authorize?rd="), "{to}");
    // A browser sent to the app goes to the sign-in page, then to the provider.
    let r = client()
        .get(g.url("/deep/link"))
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), 302);
}

/// Providers come and go with SIGHUP, like roles and rules (no provider
/// needs to run for that: discovery waits for the first sign-in).
#[test]
fn providers_reload_with_sighup() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let one = [provider_yaml("corp", "http://127.0.0.1:9", "")];
    let g = start_gatehouse(port, dir.path(), &one, "");
    let ids = || -> Vec<String> {
        let info: serde_json::Value = client()
            .get(g.url("/_auth/api/sso/info"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        info["providers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(), ["corp"]);
    let text = std::fs::read_to_string(g.config_path()).unwrap();
    let added = provider_yaml("partner", "http://127.0.0.1:9", "").replace(
        "{secret_partner}",
        &dir.path().join("partner.secret").display().to_string(),
    );
    std::fs::write(g.config_path(), format!("{text}{added}")).unwrap();
    g.signal(libc::SIGHUP);
    eventually("the new provider is offered", || {
        ids() == ["corp", "partner"]
    });
    assert_eq!(
        client()
            .get(g.url("/_auth/oidc/partner/authorize"))
            .send()
            .unwrap()
            .status(),
        502,
        "known now, and its issuer does not answer"
    );
}

/// `config/sso.yaml`, the README's example, as a user runs it: only the
/// environment says where the provider, the listener and the store are.
#[test]
fn the_readme_example_signs_in() {
    let Some(op_dir) = oidc_provider_dir_or_skip("the_readme_example_signs_in") else {
        return;
    };
    let port = free_port();
    let corp = OidcProvider::start(
        &op_dir,
        free_port(),
        &OpOptions::new(
            "gatehouse",
            "readme-secret",
            &format!("http://127.0.0.1:{port}/_auth/oidc/callback"),
        )
        .user(OpUser::new("alice").groups(&["devs"])),
    );
    let yaml =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/sso.yaml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("readme.db").display());
    let listen = format!("127.0.0.1:{port}");
    let public = format!("http://127.0.0.1:{port}");
    let issuer = corp.issuer();
    let g = Gatehouse::start_on(
        port,
        &yaml,
        &[
            ("GATEHOUSE__SERVER__LISTEN", &listen),
            ("GATEHOUSE__PUBLIC_URL", &public),
            ("GATEHOUSE__STORE__URL", &store),
            ("GATEHOUSE__OIDC__PROVIDERS__0__ISSUER", &issuer),
            (
                "GATEHOUSE__OIDC__PROVIDERS__0__CLIENT_SECRET",
                "readme-secret",
            ),
        ],
    );
    let mut a = Browser::new();
    // A return address elsewhere is not followed: back to the app instead.
    let callback = a.go_to_provider(&g, "idp", "alice", "https://evil.example/x");
    let r = a.back(&callback);
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("{public}/").as_str());
    let me = a.me(&g);
    assert_eq!(me["username"], "alice");
    assert_eq!(me["role"], "editor");
}

/// A name held by a config-file user is never taken over by a provider's
/// account (409, a page that says so), and a disabled account stays out.
#[test]
fn taken_names_and_disabled_accounts_are_refused() {
    let Some(op_dir) = oidc_provider_dir_or_skip("taken_names_and_disabled_accounts_are_refused")
    else {
        return;
    };
    let port = free_port();
    let corp = OidcProvider::start(
        &op_dir,
        free_port(),
        &OpOptions::new(
            "gatehouse-corp",
            "secret-of-corp",
            &format!("http://127.0.0.1:{port}/_auth/oidc/callback"),
        )
        .user(OpUser::new("root").email("root@corp.test"))
        .user(OpUser::new("mia").email("mia@corp.test")),
    );
    let dir = tempfile::tempdir().unwrap();
    let hash = hash_password("root's own password");
    let users =
        format!("users:\n  - username: root\n    password_hash: \"{hash}\"\n    role: admin\n");
    let g = start_gatehouse(
        port,
        dir.path(),
        &[provider_yaml("corp", &corp.issuer(), "")],
        &users,
    );

    let mut r = Browser::new();
    let callback = r.go_to_provider(&g, "corp", "root", &g.url("/"));
    let answer = r.back(&callback);
    assert_eq!(answer.status(), 409);
    assert!(answer
        .text()
        .unwrap()
        .contains("belongs to another account"));
    assert!(
        r.session.is_none(),
        "never signed in as the config-file root"
    );

    let mut m = Browser::new();
    let callback = m.go_to_provider(&g, "corp", "mia", &g.url("/"));
    assert_eq!(m.back(&callback).status(), 303);
    let store = format!("sqlite://{}", dir.path().join("sso.db").display());
    let cli = dir.path().join("cli.yaml");
    std::fs::write(
        &cli,
        store_yaml(&store, "")
            .replace("{port}", "1")
            .replace("{metrics_port}", "2"),
    )
    .unwrap();
    // This CLI config declares no user, so mia looks like the last one.
    let (code, _, err) = gatehouse_cmd(
        &[
            "user",
            "disable",
            "mia",
            "--force",
            "-c",
            &cli.display().to_string(),
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let mut again = Browser::new();
    let callback = again.go_to_provider(&g, "corp", "mia", &g.url("/"));
    assert_eq!(again.back(&callback).status(), 403);
    assert!(again.session.is_none());
}
