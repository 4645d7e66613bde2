//! The OpenID provider harness (tests/common/oidc.rs, tests/oidc-provider)
//! proves itself against real npm `oidc-provider` processes, with this file
//! playing a plain relying party: code flow with PKCE and client_secret_basic,
//! ID token and userinfo claims, two providers at once, RP-initiated logout
//! with its back-channel `logout_token`, a provider that goes down and comes
//! back. Runs when `GATEHOUSE_TEST_OIDC_PROVIDER` names the installed
//! `tests/oidc-provider` directory; SKIPs otherwise.

mod common;
#[path = "common/oidc.rs"]
mod oidc;

use common::*;
use oidc::*;
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

const SCOPE: &str = "openid email profile groups";

/// What the relying party got from one sign-in.
struct SignedIn {
    id_token: String,
    claims: serde_json::Value,
    userinfo: serde_json::Value,
}

/// The provider's authorization URL for `op`'s client.
fn authorize_url(op: &OidcProvider, state: &str, nonce: &str, challenge: &str) -> String {
    let o = op.options();
    let mut url =
        reqwest::Url::parse(op.discovery()["authorization_endpoint"].as_str().unwrap()).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &o.client_id)
        .append_pair("redirect_uri", &o.redirect_uri)
        .append_pair("scope", SCOPE)
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url.into()
}

/// Where the provider sends the browser for `login` (no code exchange).
fn callback_for(op: &OidcProvider, cookies: &ProviderCookies, login: &str) -> String {
    let url = authorize_url(op, "s", "n", &pkce_pair().1);
    sign_in_at_provider(&client(), cookies, &url, login, &op.options().redirect_uri)
}

/// The relying party's half of the code flow, by hand: authorization URL
/// (state, nonce, PKCE S256), the provider's pages through the harness, the
/// code exchanged with client_secret_basic, userinfo.
fn sign_in(op: &OidcProvider, cookies: &ProviderCookies, login: &str) -> SignedIn {
    let o = op.options();
    let discovery = op.discovery();
    let (verifier, challenge) = pkce_pair();
    let state = format!("state-{}", free_port());
    let nonce = format!("nonce-{}", free_port());
    let authorize = authorize_url(op, &state, &nonce, &challenge);

    let c = client();
    let callback = sign_in_at_provider(&c, cookies, &authorize, login, &o.redirect_uri);
    assert!(
        callback.starts_with(&format!("{}?", o.redirect_uri)),
        "{callback}"
    );
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some(state.as_str())
    );
    assert_eq!(query_param(&callback, "iss"), Some(op.issuer()));
    let code = query_param(&callback, "code").unwrap_or_else(|| panic!("no code: {callback}"));

    let token_endpoint = discovery["token_endpoint"].as_str().unwrap();
    let exchange = |verifier: &str| {
        c.post(token_endpoint)
            .basic_auth(&o.client_id, Some(&o.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", &o.redirect_uri),
                ("code_verifier", verifier),
            ])
            .send()
            .unwrap()
    };
    // PKCE is checked: a wrong verifier is refused (and burns nothing the
    // right one needs).
    let r = exchange("a-wrong-verifier-that-is-long-enough-to-be-well-formed-123");
    assert_eq!(r.status(), 400);
    let r = exchange(&verifier);
    assert_eq!(r.status(), 200);
    let tokens: serde_json::Value = r.json().unwrap();
    assert_eq!(tokens["token_type"], "Bearer", "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("an id_token").to_owned();
    let access_token = tokens["access_token"].as_str().expect("an access_token");

    assert_eq!(jwt_header(&id_token)["alg"], "RS256");
    let claims = jwt_payload(&id_token);
    assert_eq!(claims["iss"], op.issuer().as_str());
    assert_eq!(claims["aud"], o.client_id.as_str());
    assert_eq!(claims["nonce"], nonce.as_str());

    let r = c
        .get(discovery["userinfo_endpoint"].as_str().unwrap())
        .bearer_auth(access_token)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let userinfo: serde_json::Value = r.json().unwrap();
    SignedIn {
        id_token,
        claims,
        userinfo,
    }
}

fn callback_of(rp_port: u16) -> String {
    format!("http://127.0.0.1:{rp_port}/_auth/oidc/callback")
}

#[test]
fn two_providers_each_sign_in_their_own_users_with_the_code_flow() {
    let Some(dir) =
        oidc_provider_dir_or_skip("two_providers_each_sign_in_their_own_users_with_the_code_flow")
    else {
        return;
    };
    let rp = free_port();
    let one = OidcProvider::start(
        &dir,
        free_port(),
        &OpOptions::new("gatehouse-one", "secret-one", &callback_of(rp))
            .user(
                OpUser::new("alice")
                    .sub("sub-alice-1")
                    .email("alice@one.test")
                    .name("Alice One")
                    .groups(&["admins", "devs"]),
            )
            .user(
                OpUser::new("bob")
                    .email("bob@one.test")
                    .email_verified(false),
            ),
    );
    let two = OidcProvider::start(
        &dir,
        free_port(),
        &OpOptions::new("gatehouse-two", "secret-two", &callback_of(rp))
            .user(
                OpUser::new("carol")
                    .sub("7f3a-carol")
                    .email("carol@two.test")
                    .groups(&["ops"]),
            )
            .groups_in_userinfo_only(),
    );
    assert_ne!(one.issuer(), two.issuer());

    let cookies = ProviderCookies::new();
    let alice = sign_in(&one, &cookies, "alice");
    assert_eq!(alice.claims["sub"], "sub-alice-1");
    assert_eq!(alice.claims["email"], "alice@one.test");
    assert_eq!(alice.claims["email_verified"], true);
    assert_eq!(alice.claims["name"], "Alice One");
    assert_eq!(alice.claims["preferred_username"], "alice");
    assert_eq!(
        alice.claims["groups"],
        serde_json::json!(["admins", "devs"])
    );
    assert_eq!(alice.userinfo["sub"], "sub-alice-1");
    assert_eq!(
        alice.userinfo["groups"],
        serde_json::json!(["admins", "devs"])
    );
    assert_eq!(alice.userinfo["email"], "alice@one.test");

    // Signed in at `one`: a second sign-in there needs no login (nor consent).
    assert!(cookies.get(&one.issuer(), "_session").is_some());
    let again = sign_in(&one, &cookies, "nobody-asked");
    assert_eq!(again.claims["sub"], "sub-alice-1");
    // No back-channel logout registered, so no `sid` in the ID token.
    assert!(alice.claims.get("sid").is_none(), "{}", alice.claims);

    // The other provider, in the same browser, has its own session and users.
    let carol = sign_in(&two, &cookies, "carol");
    assert_eq!(carol.claims["sub"], "7f3a-carol");
    assert_eq!(carol.claims["aud"], "gatehouse-two");
    assert_eq!(carol.claims["email"], "carol@two.test");
    assert!(
        carol.claims.get("groups").is_none(),
        "groups only in userinfo: {}",
        carol.claims
    );
    assert_eq!(carol.userinfo["groups"], serde_json::json!(["ops"]));

    // A fresh browser, another user of `one`.
    let bob = sign_in(&one, &ProviderCookies::new(), "bob");
    assert_eq!(bob.claims["sub"], "bob");
    assert_eq!(bob.claims["email_verified"], false);
    assert_eq!(bob.claims["groups"], serde_json::json!([]));
    assert_eq!(bob.userinfo["email_verified"], false);

    // `two`'s client is unknown at `one`.
    let c = client();
    let r = c
        .get(format!(
            "{}/auth?response_type=code&client_id=gatehouse-two&scope=openid&redirect_uri={}",
            one.issuer(),
            callback_of(rp)
        ))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[test]
fn an_unknown_login_ends_with_access_denied() {
    let Some(dir) = oidc_provider_dir_or_skip("an_unknown_login_ends_with_access_denied") else {
        return;
    };
    let rp = free_port();
    let op = OidcProvider::start(
        &dir,
        free_port(),
        &OpOptions::new("gatehouse", "s", &callback_of(rp)).user(OpUser::new("alice")),
    );
    let cookies = ProviderCookies::new();
    let callback = callback_for(&op, &cookies, "mallory");
    assert_eq!(
        query_param(&callback, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&callback, "state").as_deref(), Some("s"));
    assert_eq!(query_param(&callback, "code"), None);
    // Nobody was signed in: the next try asks for a login again.
    assert_eq!(
        query_param(&callback_for(&op, &cookies, "mallory"), "error").as_deref(),
        Some("access_denied")
    );
    // The same browser can still sign in as a known user.
    assert!(query_param(&callback_for(&op, &cookies, "alice"), "code").is_some());
}

/// A one-endpoint HTTP server standing in for the RP's
/// backchannel_logout_uri: answers 200 and hands over each request
/// (request line, body).
fn backchannel_receiver() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind(("127.0.0.1", free_port())).unwrap();
    let url = format!(
        "http://{}/_auth/oidc/backchannel-logout",
        listener.local_addr().unwrap()
    );
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream): std::io::Result<TcpStream> = stream else {
                continue;
            };
            use std::io::Write;
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = read_response(&mut stream);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            let (head, body) = request.split_once("\r\n\r\n").unwrap_or((&request, ""));
            let line = head.lines().next().unwrap_or("").to_owned();
            let headers = head.to_ascii_lowercase();
            assert!(
                headers.contains("content-type: application/x-www-form-urlencoded"),
                "{head}"
            );
            if tx.send((line, body.to_owned())).is_err() {
                return;
            }
        }
    });
    (url, rx)
}

#[test]
fn rp_initiated_logout_sends_a_backchannel_logout_token() {
    let Some(dir) =
        oidc_provider_dir_or_skip("rp_initiated_logout_sends_a_backchannel_logout_token")
    else {
        return;
    };
    let rp = free_port();
    let post_logout = format!("http://127.0.0.1:{rp}/_auth/signed-out");
    let (backchannel, received) = backchannel_receiver();
    let op = OidcProvider::start(
        &dir,
        free_port(),
        &OpOptions::new("gatehouse", "gatehouse-secret", &callback_of(rp))
            .post_logout_redirect_uri(&post_logout)
            .backchannel_logout_uri(&backchannel)
            .user(OpUser::new("alice").sub("sub-of-alice").groups(&["admins"])),
    );
    let discovery = op.discovery();
    assert_eq!(discovery["backchannel_logout_supported"], true);
    assert_eq!(discovery["backchannel_logout_session_supported"], true);

    let cookies = ProviderCookies::new();
    let alice = sign_in(&op, &cookies, "alice");
    let sid = alice.claims["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("a sid in the ID token: {}", alice.claims))
        .to_owned();
    assert!(received.try_recv().is_err(), "nothing before the logout");

    let mut end = reqwest::Url::parse(discovery["end_session_endpoint"].as_str().unwrap()).unwrap();
    end.query_pairs_mut()
        .append_pair("id_token_hint", &alice.id_token)
        .append_pair("post_logout_redirect_uri", &post_logout)
        .append_pair("state", "after-logout");
    let back = end_session_at_provider(&client(), &cookies, end.as_str());
    assert_eq!(back, format!("{post_logout}?state=after-logout"));

    let (line, body) = received
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no back-channel logout POST; provider log:\n{}", op.log()));
    assert_eq!(line, "POST /_auth/oidc/backchannel-logout HTTP/1.1");
    let token = body
        .strip_prefix("logout_token=")
        .unwrap_or_else(|| panic!("a logout_token form body: {body}"));
    assert_eq!(jwt_header(token)["alg"], "RS256");
    let claims = jwt_payload(token);
    assert_eq!(
        claims["events"]["http://schemas.openid.net/event/backchannel-logout"],
        serde_json::json!({}),
        "{claims}"
    );
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
    assert_eq!(claims["sub"], "sub-of-alice", "{claims}");
    assert_eq!(claims["iss"], op.issuer().as_str());
    assert_eq!(claims["aud"], "gatehouse");
    assert!(
        claims["jti"].is_string() && claims["iat"].is_number(),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none(), "{claims}");
    println!("logout token claims: {claims}");
    println!("ID token claims: {}", alice.claims);

    // The provider's session is over: the next sign-in logs in again, with a
    // new sid.
    assert!(cookies.get(&op.issuer(), "_session").is_none());
    let again = sign_in(&op, &cookies, "alice");
    assert_ne!(again.claims["sid"], sid.as_str());
    assert!(received.try_recv().is_err(), "one logout, one token");
}

#[test]
fn a_provider_goes_down_and_comes_back_on_its_port() {
    let Some(dir) = oidc_provider_dir_or_skip("a_provider_goes_down_and_comes_back_on_its_port")
    else {
        return;
    };
    let rp = free_port();
    let mut op = OidcProvider::start(
        &dir,
        free_port(),
        &OpOptions::new("gatehouse", "s", &callback_of(rp)).user(OpUser::new("alice")),
    );
    let jwks_url = op.url("/jwks");
    let jwks =
        || -> serde_json::Value { reqwest::blocking::get(&jwks_url).unwrap().json().unwrap() };
    let keys_before = jwks();
    let cookies = ProviderCookies::new();
    let first = sign_in(&op, &cookies, "alice");
    // Signed in: the provider's session answers for any typed name.
    assert!(query_param(&callback_for(&op, &cookies, "nobody"), "code").is_some());

    op.stop();
    assert!(!op.running());
    assert!(
        TcpStream::connect(("127.0.0.1", op.port())).is_err(),
        "nothing listens on a stopped provider's port"
    );
    assert!(reqwest::blocking::get(op.url("/.well-known/openid-configuration")).is_err());

    op.restart();
    assert!(op.running());
    assert_eq!(op.discovery()["issuer"], op.issuer().as_str());
    assert_eq!(
        jwks(),
        keys_before,
        "a restarted provider keeps its signing key"
    );
    // It forgot its sessions: the old cookie signs nobody in, a login does.
    assert_eq!(
        query_param(&callback_for(&op, &cookies, "nobody"), "error").as_deref(),
        Some("access_denied"),
        "a login was asked for"
    );
    let second = sign_in(&op, &cookies, "alice");
    assert_eq!(second.claims["sub"], "alice");
    assert_eq!(
        jwt_header(&second.id_token)["kid"],
        jwt_header(&first.id_token)["kid"]
    );

    // restart() of a running provider is stop + start.
    op.restart();
    assert_eq!(op.discovery()["issuer"], op.issuer().as_str());

    // restart_with: same port and key, other users.
    let options = op
        .options()
        .clone()
        .user(OpUser::new("bob").groups(&["late"]));
    op.restart_with(&options);
    let bob = sign_in(&op, &ProviderCookies::new(), "bob");
    assert_eq!(bob.claims["groups"], serde_json::json!(["late"]));
    assert_eq!(
        jwt_header(&bob.id_token)["kid"],
        jwt_header(&first.id_token)["kid"]
    );
}
