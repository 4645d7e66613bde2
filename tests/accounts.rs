//! Accounts that look after themselves, against a real SMTP server
//! (aiosmtpd, found through `GATEHOUSE_TEST_SMTP`): registration in every
//! mode, activation, invitations, password reset; and that no answer tells
//! a stranger whether an account exists.

mod common;
#[path = "common/smtp.rs"]
mod smtp;

use common::*;
use smtp::*;
use std::time::{Duration, Instant};

fn yaml(store: &str, sink_port: u16, extra: &str) -> String {
    store_yaml(
        store,
        &format!(
            "smtp:\n  host: 127.0.0.1\n  port: {sink_port}\n  security: none\n  from: \"Acme <no-reply@acme.test>\"\nroles:\n  editor: [\"posts:*\"]\n{extra}"
        ),
    )
}

fn post_json(g: &Gatehouse, path: &str, body: serde_json::Value) -> reqwest::blocking::Response {
    client().post(g.url(path)).json(&body).send().unwrap()
}

fn login_status(g: &Gatehouse, user: &str, password: &str) -> u16 {
    post_json(
        g,
        "/_auth/api/login",
        serde_json::json!({"username": user, "password": password}),
    )
    .status()
    .as_u16()
}

/// The first mail to `to` whose subject contains `about`, within `secs`.
fn mail_to(sink: &SmtpSink, to: &str, about: &str, secs: u64) -> ReceivedMail {
    let start = Instant::now();
    loop {
        if let Some(m) = sink
            .mails()
            .into_iter()
            .find(|m| m.to.contains(to) && m.subject.to_lowercase().contains(about))
        {
            return m;
        }
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "no `{about}` mail to {to} within {secs} s; got {:?}\n{}",
            sink.mails(),
            sink.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The link in a mail that starts with `prefix`.
fn link_in(mail: &ReceivedMail, prefix: &str) -> String {
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

fn token_of(link: &str) -> String {
    link.rsplit_once('=').unwrap().1.to_owned()
}

#[test]
fn registration_in_every_mode_activation_and_invitations() {
    let Some(py) = smtp_or_skip("registration_in_every_mode_activation_and_invitations") else {
        return;
    };
    let sink = SmtpSink::start(&py);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("a.db").display());

    // Closed, and nobody yet: the first registration is an active admin.
    let g = Gatehouse::start(&yaml(&store, sink.port, ""));
    let status: serde_json::Value = client()
        .get(g.url("/_auth/api/registration-status"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        status,
        serde_json::json!({"mode": "closed", "enabled": false})
    );
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "boss", "email": "boss@acme.test", "password": "boss password 1"}),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "active", "is_admin": true})
    );
    assert_eq!(login_status(&g, "boss", "boss password 1"), 200);
    // Now closed for everyone else.
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "eve", "email": "eve@acme.test", "password": "eve password 1"}),
    );
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "registration_closed"
    );

    // An invitation opens it for one person, with its role.
    let r = client()
        .post(g.url("/_auth/api/invitations"))
        .basic_auth("boss", Some("boss password 1"))
        .json(&serde_json::json!({"email": "ivy@acme.test", "role": "editor"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let inv: serde_json::Value = r.json().unwrap();
    let invitation = mail_to(&sink, "ivy@acme.test", "invit", 20);
    let link = link_in(&invitation, &g.url("/_auth/register?invitation="));
    assert_eq!(link, inv["link"].as_str().unwrap());
    let page = client().get(&link).send().unwrap().text().unwrap();
    assert!(page.contains("ivy@acme.test"), "{page}");
    let listed: serde_json::Value = client()
        .get(g.url("/_auth/api/invitations"))
        .basic_auth("boss", Some("boss password 1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(listed["invitations"][0]["id"], inv["id"]);
    let body = serde_json::json!({"username": "ivy", "password": "ivy password 1", "invitation": token_of(&link)});
    let r = post_json(&g, "/_auth/api/register", body.clone());
    assert_eq!(r.status(), 201);
    assert_eq!(r.json::<serde_json::Value>().unwrap()["status"], "active");
    let me: serde_json::Value = client()
        .get(g.url("/_auth/api/me"))
        .basic_auth("ivy", Some("ivy password 1"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["role"], "editor");
    assert_eq!(me["email"], "ivy@acme.test");
    // Single use.
    let again = serde_json::json!({"username": "ivy2", "password": "ivy password 1", "invitation": token_of(&link)});
    let r = post_json(&g, "/_auth/api/register", again);
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "invalid_token"
    );
    // A revoked invitation opens nothing; only managers invite.
    let r = client()
        .post(g.url("/_auth/api/invitations"))
        .basic_auth("boss", Some("boss password 1"))
        .json(&serde_json::json!({"email": "rex@acme.test"}))
        .send()
        .unwrap();
    let rex: serde_json::Value = r.json().unwrap();
    let r = client()
        .delete(g.url(&format!(
            "/_auth/api/invitations/{}",
            rex["id"].as_str().unwrap()
        )))
        .basic_auth("boss", Some("boss password 1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let rex_body = serde_json::json!({"username": "rex", "password": "rex password 1", "invitation": token_of(rex["link"].as_str().unwrap())});
    assert_eq!(post_json(&g, "/_auth/api/register", rex_body).status(), 400);
    let r = client()
        .post(g.url("/_auth/api/invitations"))
        .basic_auth("ivy", Some("ivy password 1"))
        .json(&serde_json::json!({"email": "x@acme.test"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 403);
    g.stop();

    // Open: active at once, with the default role.
    let g = Gatehouse::start(&yaml(&store, sink.port, "registration:\n  mode: open\n"));
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "olga", "email": "olga@acme.test", "password": "olga password 1"}),
    );
    assert_eq!(r.status(), 201);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap(),
        serde_json::json!({"status": "active", "is_admin": false})
    );
    assert_eq!(login_status(&g, "olga", "olga password 1"), 200);
    // A weak password is refused with the rule; a taken name, generically.
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "pat", "email": "pat@acme.test", "password": "short"}),
    );
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().unwrap();
    assert_eq!(e["error"], "weak_password");
    assert!(e["message"].as_str().unwrap().contains('8'), "{e}");
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "olga", "email": "o2@acme.test", "password": "olga password 2"}),
    );
    assert_eq!(r.status(), 409);
    let taken_name = r.text().unwrap();
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "olga2", "email": "olga@acme.test", "password": "olga password 2"}),
    );
    assert_eq!(r.text().unwrap(), taken_name, "name and e-mail: one answer");
    g.stop();

    // Invite: pending until the mailed link is followed (on the page).
    let g = Gatehouse::start(&yaml(&store, sink.port, "registration:\n  mode: invite\n"));
    let answer = |name: &str, email: &str| {
        let r = post_json(
            &g,
            "/_auth/api/register",
            serde_json::json!({"username": name, "email": email, "password": "some password 1"}),
        );
        (r.status().as_u16(), r.text().unwrap())
    };
    let fresh = answer("nina", "nina@acme.test");
    assert_eq!(fresh.0, 201);
    assert!(fresh.1.contains("pending_activation"), "{}", fresh.1);
    // A taken address answers exactly the same (its owner gets a mail instead).
    assert_eq!(answer("someone", "olga@acme.test"), fresh);
    mail_to(&sink, "olga@acme.test", "", 20);
    assert_eq!(
        login_status(&g, "nina", "some password 1"),
        401,
        "not before activation"
    );
    let activation = mail_to(&sink, "nina@acme.test", "activ", 20);
    let link = link_in(&activation, &g.url("/_auth/activate?token="));
    let r = client().get(&link).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        login_status(&g, "nina", "some password 1"),
        401,
        "showing the page (a mail scanner) activates nothing"
    );
    let csrf_cookie = set_cookie_value(&r, "gatehouse_csrf").unwrap();
    let html = r.text().unwrap();
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let activate = |token: &str| {
        client()
            .post(g.url("/_auth/activate"))
            .header("cookie", format!("gatehouse_csrf={csrf_cookie}"))
            .form(&[("csrf", csrf.as_str()), ("token", token)])
            .send()
            .unwrap()
    };
    assert_eq!(activate(&token_of(&link)).status(), 200);
    assert_eq!(login_status(&g, "nina", "some password 1"), 200);
    assert_eq!(activate(&token_of(&link)).status(), 400, "single use");
    // Resending answers the same for any address.
    let resend = |email: &str| {
        let r = post_json(
            &g,
            "/_auth/api/activation/resend",
            serde_json::json!({"email": email}),
        );
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(resend("nina@acme.test"), resend("nobody@acme.test"));
    let r = post_json(
        &g,
        "/_auth/api/register",
        serde_json::json!({"username": "noemail", "password": "some password 1"}),
    );
    assert_eq!(r.status(), 400, "invite mode needs an address");
}

#[test]
fn password_reset_end_to_end_and_through_an_smtp_outage() {
    let Some(py) = smtp_or_skip("password_reset_end_to_end_and_through_an_smtp_outage") else {
        return;
    };
    let mut sink = SmtpSink::start(&py);
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite://{}", dir.path().join("r.db").display());
    add_store_user(
        &store,
        dir.path(),
        "rita",
        "rita password 1",
        &["--email", "rita@acme.test"],
    );
    let g = Gatehouse::start(&yaml(&store, sink.port, ""));

    // Known and unknown addresses: byte-identical answers.
    let reset = |email: &str| {
        let r = post_json(
            &g,
            "/_auth/api/password-reset",
            serde_json::json!({"email": email}),
        );
        (r.status().as_u16(), r.text().unwrap())
    };
    let known = reset("rita@acme.test");
    assert_eq!(known.0, 200);
    assert_eq!(reset("nobody@acme.test"), known);
    let mail = mail_to(&sink, "rita@acme.test", "password", 20);
    let link = link_in(&mail, &g.url("/_auth/reset?token="));
    let token = token_of(&link);
    assert_eq!(token.len(), 43, "256 random bits");
    // A session that must end with the reset.
    let r = client()
        .post(g.url("/_auth/api/session"))
        .basic_auth("rita", Some("rita password 1"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let session = set_cookie_value(&r, "gatehouse_session").unwrap();
    let me = |cookie: &str| {
        client()
            .get(g.url("/_auth/api/me"))
            .header("cookie", format!("gatehouse_session={cookie}"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(me(&session), 200);
    // The page shows the new-password form for the link.
    let page = client().get(&link).send().unwrap().text().unwrap();
    assert!(page.contains("new_password"), "{page}");
    // Weak: refused, and the link still works.
    let confirm = |password: &str| {
        post_json(
            &g,
            "/_auth/api/password-reset/confirm",
            serde_json::json!({"token": token, "new_password": password}),
        )
    };
    let r = confirm("short");
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "weak_password"
    );
    let r = confirm("rita's new password");
    assert_eq!(r.status(), 200);
    assert_eq!(login_status(&g, "rita", "rita password 1"), 401);
    assert_eq!(login_status(&g, "rita", "rita's new password"), 200);
    eventually("the old session ends", || me(&session) == 401);
    let r = confirm("rita's third password");
    assert_eq!(r.status(), 400, "single use");
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "invalid_token"
    );
    let r = post_json(
        &g,
        "/_auth/api/password-reset/confirm",
        serde_json::json!({"token": "made-up", "new_password": "whatever password"}),
    );
    assert_eq!(r.status(), 400);

    // An expired link is refused, and changes nothing.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let st = gatehouse::store::Store::open(&store).await.unwrap();
        let now = gatehouse::store::unix_now();
        st.create_account_token(
            gatehouse::store::AccountToken {
                token_hash: gatehouse::session::id_hash("an-expired-link-token"),
                id: "expired-link".into(),
                purpose: gatehouse::store::TokenPurpose::Reset,
                username: Some("rita".into()),
                email: Some("rita@acme.test".into()),
                role: None,
                password_hash: None,
                created_by: None,
                created_at: now - 7200,
                expires_at: now - 3600,
                used_at: None,
            },
            None,
        )
        .await
        .unwrap();
    });
    let r = post_json(
        &g,
        "/_auth/api/password-reset/confirm",
        serde_json::json!({"token": "an-expired-link-token", "new_password": "expired link password"}),
    );
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<serde_json::Value>().unwrap()["error"],
        "invalid_token"
    );
    assert_eq!(login_status(&g, "rita", "rita's new password"), 200);

    // SMTP down while a reset is asked for: the mail waits, then arrives.
    sink.stop();
    assert_eq!(reset("rita@acme.test"), known);
    std::thread::sleep(Duration::from_millis(500));
    let before = sink.mails().len();
    sink.restart();
    let start = Instant::now();
    while sink.mails().len() == before {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the reset mail never came after SMTP returned"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let newest = sink.mails().pop().unwrap();
    assert!(newest.to.contains("rita@acme.test"));
}
