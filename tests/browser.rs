//! The pages in a real browser: headless Chromium (Debian's `chromium`),
//! driven by npm `playwright-core` from `tests/browser/*.mjs`, against the
//! real binary. Found through `GATEHOUSE_TEST_CHROMIUM` (the browser's path);
//! `.ci/run` installs both and sets it. Screenshots land in
//! `target/screenshots/`. The single sign-on test also needs the OpenID
//! providers of `GATEHOUSE_TEST_OIDC_PROVIDER` (see `tests/common/oidc.rs`).

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use common::*;
use oidc::*;
use std::path::Path;
use std::process::Command;

/// The browser to drive, or `None` (after printing a SKIP line).
fn chromium_or_skip(test: &str) -> Option<String> {
    let Ok(chromium) = std::env::var("GATEHOUSE_TEST_CHROMIUM") else {
        println!("SKIP {test}: GATEHOUSE_TEST_CHROMIUM is not set, so no browser ran");
        return None;
    };
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "GATEHOUSE_TEST_CHROMIUM is set but playwright-core is not installed: run `npm ci --prefix tests/browser`"
    );
    Some(chromium)
}

/// Where the scripts put their screenshots.
fn screenshots() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// Runs `tests/browser/<script>` in node with `env` plus `SCREENSHOTS` and
/// `CHROMIUM`, prints what it said, and fails the test unless it exited well
/// and printed `passed` (`context` adds what else to show then, such as a
/// provider's log).
fn run_script(
    script: &str,
    chromium: &str,
    env: &[(&str, &str)],
    passed: &str,
    context: impl Fn() -> String,
) {
    let out = Command::new("node")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/browser")
                .join(script),
        )
        .envs(env.iter().copied())
        .env("SCREENSHOTS", screenshots())
        .env("CHROMIUM", chromium)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{stderr}{}",
        context()
    );
    assert!(stdout.contains(passed), "{stdout}");
}

/// [`run_script`] for a script that ends with `browser test passed`, and
/// must have taken every screenshot in `shots` (removed first, so none is
/// left over from an earlier run).
fn run_browser_script(
    script: &str,
    chromium: &str,
    env: &[(&str, &str)],
    shots: &[&str],
    context: impl Fn() -> String,
) {
    let dir = screenshots();
    for shot in shots {
        let _ = std::fs::remove_file(dir.join(shot));
    }
    run_script(script, chromium, env, "browser test passed", context);
    for shot in shots {
        assert!(dir.join(shot).is_file(), "screenshot {shot}");
    }
}

#[test]
fn two_factor_enrolment_and_sign_in_in_chromium() {
    let Some(chromium) = chromium_or_skip("two_factor_enrolment_and_sign_in_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("b.db").display());
    let yaml = store_yaml(
        &store,
        "portal:\n  title: \"Acme\"\ntwo_factor:\n  encryption_key: \"browser-test key, at least 32 characters\"\n",
    );
    add_store_user(&store, dir.path(), "alice", "correct horse battery", &[]);
    let g = Gatehouse::start(&yaml);
    run_browser_script(
        "two_factor.mjs",
        &chromium,
        &[
            ("GATEHOUSE_URL", g.url("").as_str()),
            ("GATEHOUSE_USER", "alice"),
            ("GATEHOUSE_PASSWORD", "correct horse battery"),
        ],
        &["login.png", "two-factor.png", "account-enrol.png"],
        String::new,
    );
}

/// One `oidc:` provider entry: `display_name` as the sign-in button shows it.
fn sso_provider_yaml(id: &str, display: &str, issuer: &str, secret_file: &Path) -> String {
    format!(
        "    - id: {id}\n      display_name: \"{display}\"\n      issuer: \"{issuer}\"\n      client_id: gatehouse-{id}\n      client_secret_file: \"{}\"\n      scopes: [openid, email, profile, groups]\n      role_map: {{ admins: admin }}\n",
        secret_file.display()
    )
}

#[test]
fn single_sign_on_in_chromium() {
    let test = "single_sign_on_in_chromium";
    // Both checks run, so each missing piece gets its own SKIP line.
    let chromium = chromium_or_skip(test);
    let op_dir = oidc_provider_dir_or_skip(test);
    let (Some(chromium), Some(op_dir)) = (chromium, op_dir) else {
        return;
    };

    // Two providers, each with its own client and user; both send the
    // browser back to Gatehouse, whose port is chosen first.
    let port = free_port();
    let callback = format!("http://127.0.0.1:{port}/_auth/oidc/callback");
    let corp = OidcProvider::start(
        &op_dir,
        free_port(),
        &OpOptions::new("gatehouse-corp", "secret-of-corp", &callback).user(
            OpUser::new("alice")
                .sub("corp-alice")
                .email("alice@corp.test")
                .name("Alice Example")
                .groups(&["admins"]),
        ),
    );
    let partner = OidcProvider::start(
        &op_dir,
        free_port(),
        &OpOptions::new("gatehouse-partner", "secret-of-partner", &callback).user(
            OpUser::new("dave")
                .sub("partner-dave")
                .email("dave@partner.test")
                .name("Dave Example"),
        ),
    );

    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("sso.db").display());
    // A local administrator, so the page offers sign-in, not first-time setup.
    add_store_user(
        &store,
        dir.path(),
        "root",
        "the local admin's password",
        &["--role", "admin"],
    );
    let mut yaml = store_yaml(&store, "portal:\n  title: \"Acme\"\noidc:\n  providers:\n");
    for (id, display, op) in [
        ("corp", "Corp SSO", &corp),
        ("partner", "Partner SSO", &partner),
    ] {
        let secret = dir.path().join(format!("{id}.secret"));
        std::fs::write(&secret, format!("{}\n", op.options().client_secret)).unwrap();
        yaml.push_str(&sso_provider_yaml(id, display, &op.issuer(), &secret));
    }
    let g = Gatehouse::start_on(port, &yaml, &[]);
    run_browser_script(
        "sso.mjs",
        &chromium,
        &[
            ("GATEHOUSE_URL", g.url("").as_str()),
            ("CORP_ISSUER", corp.issuer().as_str()),
            ("PARTNER_ISSUER", partner.issuer().as_str()),
        ],
        &[
            "sso-login.png",
            "sso-provider-login.png",
            "sso-provider-consent.png",
            "sso-app.png",
            "sso-me.png",
        ],
        || {
            format!(
                "\ncorp provider log:\n{}\npartner provider log:\n{}",
                corp.log(),
                partner.log()
            )
        },
    );
}

// Self-service accounts read their mail from a real SMTP server (aiosmtpd,
// found through `GATEHOUSE_TEST_SMTP`; see `tests/common/smtp.rs`).
#[path = "common/smtp.rs"]
mod smtp;

/// The first mail to `to` whose subject contains `about` (any case), within 30 s.
fn mail_to(sink: &smtp::SmtpSink, to: &str, about: &str) -> smtp::ReceivedMail {
    let start = std::time::Instant::now();
    loop {
        if let Some(m) = sink
            .mails()
            .into_iter()
            .find(|m| m.to.contains(to) && m.subject.to_lowercase().contains(about))
        {
            return m;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no `{about}` mail to {to} within 30 s; got {:?}\n{}",
            sink.mails(),
            sink.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The link in a mail's text that starts with `prefix`.
fn link_in(mail: &smtp::ReceivedMail, prefix: &str) -> String {
    let at = mail
        .text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in:\n{}", mail.text));
    mail.text[at..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn self_service_accounts_in_chromium() {
    let test = "self_service_accounts_in_chromium";
    // Both checks run, so each missing piece gets its own SKIP line.
    let chromium = chromium_or_skip(test);
    let py = smtp::smtp_or_skip(test);
    let (Some(chromium), Some(py)) = (chromium, py) else {
        return;
    };
    let sink = smtp::SmtpSink::start(&py);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("acc.db").display());
    // An administrator already, so the registration is an ordinary one.
    add_store_user(
        &store,
        dir.path(),
        "root",
        "the local admin's password",
        &["--role", "admin", "--email", "root@acme.test"],
    );
    let yaml = store_yaml(
        &store,
        &format!(
            "portal:\n  title: \"Acme\"\nsmtp:\n  host: 127.0.0.1\n  port: {}\n  security: none\n  from: \"Acme <no-reply@acme.test>\"\nregistration:\n  mode: invite\n",
            sink.port
        ),
    );
    let g = Gatehouse::start(&yaml);

    let (user, email) = ("nora", "nora@acme.test");
    let (password, new_password) = ("nora's first password", "nora's second password");
    let shots = screenshots();
    let state = dir.path().join("session-state.json");
    let shot_names = [
        "accounts-register.png",
        "accounts-check-mail.png",
        "accounts-activate.png",
        "accounts-activated.png",
        "accounts-signed-in.png",
        "accounts-reset.png",
        "accounts-reset-sent.png",
        "accounts-reset-new-password.png",
        "accounts-password-changed.png",
        "accounts-reset-signed-in.png",
    ];
    // Left by an earlier run: each must be taken again.
    for shot in shot_names {
        let _ = std::fs::remove_file(shots.join(shot));
    }
    // One browser run per phase; the mail in between is read here.
    let url = g.url("");
    let state_path = state.display().to_string();
    let phase = |phase: &str, link: Option<&str>| {
        let mut env = vec![
            ("PHASE", phase),
            ("GATEHOUSE_URL", url.as_str()),
            ("ACCOUNT_USER", user),
            ("ACCOUNT_EMAIL", email),
            ("ACCOUNT_PASSWORD", password),
            ("NEW_PASSWORD", new_password),
            ("STATE", state_path.as_str()),
        ];
        if let Some(link) = link {
            env.push(("LINK", link));
        }
        run_script(
            "accounts.mjs",
            &chromium,
            &env,
            &format!("browser phase {phase} passed"),
            || format!("\nmails: {:?}", sink.mails()),
        );
    };
    let login_status = |name: &str, pw: &str| {
        client()
            .post(g.url("/_auth/api/login"))
            .json(&serde_json::json!({"username": name, "password": pw}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };

    // Register: the page promises a mail, and it comes.
    phase("register", None);
    let activation = mail_to(&sink, email, "activ");
    let link = link_in(&activation, &g.url("/_auth/activate?token="));
    assert_eq!(login_status(user, password), 401, "not before activation");

    // Activate with the button, sign in.
    phase("activate", Some(&link));
    assert_eq!(login_status(user, password), 200, "activated");
    assert!(state.is_file(), "the activate phase kept its session");

    // Forgot the password: ask for a link, follow it, set a new one.
    phase("reset-request", None);
    let reset = mail_to(&sink, email, "password");
    let link = link_in(&reset, &g.url("/_auth/reset?token="));
    phase("reset-confirm", Some(&link));
    assert_eq!(login_status(user, password), 401, "the old password");
    assert_eq!(login_status(user, new_password), 200, "the new password");
    // The administrator got no mail about any of this.
    assert!(
        sink.mails()
            .iter()
            .all(|m| !m.to.contains("root@acme.test")),
        "{:?}",
        sink.mails()
    );

    for shot in shot_names {
        assert!(shots.join(shot).is_file(), "screenshot {shot}");
    }
}

/// A store in `dir` with an administrator, `root` ("the admin's password"),
/// created first (the first user would become one), and `amy` ("amy's
/// password") of role `user`; its URL.
fn root_and_amy(dir: &Path) -> String {
    let store = format!("sqlite://{}", dir.join("gatehouse.db").display());
    add_store_user(
        &store,
        dir,
        "root",
        "the admin's password",
        &["--role", "admin"],
    );
    add_store_user(&store, dir, "amy", "amy's password", &[]);
    store
}

#[test]
fn administration_in_chromium() {
    let Some(chromium) = chromium_or_skip("administration_in_chromium") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = root_and_amy(dir.path());
    let g = Gatehouse::start(&store_yaml(&store, "portal:\n  title: \"Acme\"\n"));
    run_browser_script(
        "admin.mjs",
        &chromium,
        &[
            ("GATEHOUSE_URL", g.url("").as_str()),
            ("ADMIN_USER", "root"),
            ("ADMIN_PASSWORD", "the admin's password"),
        ],
        &["admin-users.png", "admin-user-edit.png"],
        String::new,
    );
}

#[test]
fn error_pages_in_chromium_at_desktop_and_phone_widths() {
    let Some(chromium) = chromium_or_skip("error_pages_in_chromium_at_desktop_and_phone_widths")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = root_and_amy(dir.path());
    // The app is a port nobody listens on, so allowed requests get a 502.
    // The logo is the favicon, as the one image that is surely there.
    let dead = free_port();
    let yaml = store_yaml(
        &store,
        "portal:\n  title: \"Acme\"\n  accent_color: \"#0a7d5a\"\n  logo_url: \"/_auth/favicon.svg\"\nregulation:\n  max_retries: 2\n  ban_time: 15m\nrules:\n  - path: /admin/**\n    permission: \"admin:access\"\n",
    )
    .replace("url: \"echo:\"", &format!("url: \"http://127.0.0.1:{dead}\""));
    let g = Gatehouse::start(&yaml);
    // Banned before the browser comes: two wrong passwords for `mallory`.
    for attempt in 0..2 {
        let r = client()
            .get(g.url("/app"))
            .basic_auth("mallory", Some(format!("wrong-{attempt}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 401);
    }

    let names: Vec<String> = ["403", "429", "502", "400", "404", "setup"]
        .iter()
        .flat_map(|which| ["desktop", "phone"].map(|w| format!("error-{which}-{w}.png")))
        .collect();
    run_browser_script(
        "errors.mjs",
        &chromium,
        &[
            ("GATEHOUSE_URL", g.url("").as_str()),
            ("USER_NAME", "amy"),
            ("USER_PASSWORD", "amy's password"),
            ("BANNED_USER", "mallory"),
        ],
        &names.iter().map(String::as_str).collect::<Vec<_>>(),
        String::new,
    );
}
