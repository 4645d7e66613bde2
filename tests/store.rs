//! One conformance suite for every store backend: SQLite always, PostgreSQL
//! when `GATEHOUSE_TEST_POSTGRES` names a server (CI sets it).

mod common;

use gatehouse::directory::UserStatus;
use gatehouse::identity::UserKind;
use gatehouse::store::{NewUser, Store, StoreError};

fn new_user(name: &str, email: Option<&str>) -> NewUser {
    NewUser {
        username: name.into(),
        email: email.map(str::to_owned),
        name: Some(format!("{name} Example")),
        kind: UserKind::User,
        role: "user".into(),
        password_hash: Some("$argon2id$v=19$m=16,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
    }
}

async fn conformance(url: &str) {
    let store = Store::open(url).await.expect("open");
    // Opening again re-runs migrations harmlessly.
    let store2 = Store::open(url).await.expect("reopen");
    store.ping().await.unwrap();
    assert_eq!(store.count_enabled_users().await.unwrap(), 0);
    assert_eq!(store.last_change_id().await.unwrap(), 0);

    let a = store
        .create_user(new_user("alice", Some("alice@example.test")))
        .await
        .unwrap();
    assert_eq!(a.record.username, "alice");
    assert_eq!(a.record.status, UserStatus::Enabled);
    assert_eq!(a.record.kind, UserKind::User);
    assert!(a.created_at > 1_700_000_000 && a.last_login_at.is_none());
    let mut api = new_user("robot", None);
    api.kind = UserKind::Api;
    api.password_hash = None;
    store.create_user(api).await.unwrap();

    assert_eq!(
        store.create_user(new_user("alice", None)).await,
        Err(StoreError::Conflict("alice".into())),
        "duplicate username"
    );
    assert!(
        matches!(
            store
                .create_user(new_user("alice2", Some("alice@example.test")))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "duplicate email"
    );

    let got = store2.user("alice").await.unwrap().unwrap();
    assert_eq!(got, a, "a second handle sees the same row");
    assert_eq!(store.user("nobody").await.unwrap(), None);
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.record.username)
        .collect();
    assert_eq!(names, vec!["alice", "robot"]);
    let robot = store.user("robot").await.unwrap().unwrap();
    assert_eq!(
        (robot.record.kind, robot.record.password_hash),
        (UserKind::Api, None)
    );

    store.set_role("alice", "editor").await.unwrap();
    store
        .set_status("alice", UserStatus::Disabled)
        .await
        .unwrap();
    store
        .set_password_hash("alice", "$argon2id$new")
        .await
        .unwrap();
    let changed = store.user("alice").await.unwrap().unwrap().record;
    assert_eq!(
        (
            changed.role.as_str(),
            changed.status,
            changed.password_hash.as_deref()
        ),
        ("editor", UserStatus::Disabled, Some("$argon2id$new"))
    );
    assert_eq!(store.count_enabled_users().await.unwrap(), 1);
    assert_eq!(
        store.set_role("ghost", "x").await,
        Err(StoreError::NotFound("user `ghost`".into()))
    );

    // Every mutation is in the change feed, in order.
    let feed = store.changes_since(0).await.unwrap();
    let subjects: Vec<&str> = feed.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, vec!["alice", "alice", "alice"]);
    assert!(feed.windows(2).all(|w| w[0].id < w[1].id));
    let last = store.last_change_id().await.unwrap();
    assert_eq!(last, feed[2].id);
    store.delete_user("robot").await.unwrap();
    let after = store2.changes_since(last).await.unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(
        (after[0].kind.as_str(), after[0].subject.as_str()),
        ("user", "robot")
    );
    assert_eq!(
        store.delete_user("robot").await,
        Err(StoreError::NotFound("user `robot`".into()))
    );
    assert_eq!(store.user("robot").await.unwrap(), None);
    tokens_keys_and_regulation(&store, &store2).await;
}

/// The rest of the schema: e-mail lookup, the first-user guard, revoked
/// tokens, generated signing keys, failures and bans, stored API keys.
async fn tokens_keys_and_regulation(store: &Store, other: &Store) {
    let by_mail = store.user_by_email("ALICE@example.TEST").await.unwrap();
    assert_eq!(by_mail.map(|u| u.record.username), Some("alice".to_owned()));
    // Alice is disabled and robot deleted: nobody enabled, so the first
    // user may be created once; then setup is closed.
    let eve = store
        .create_first_user(new_user("eve", None))
        .await
        .unwrap();
    assert_eq!(eve.record.username, "eve");
    assert_eq!(
        other.create_first_user(new_user("mallory", None)).await,
        Err(StoreError::Closed)
    );

    assert!(!store.is_token_revoked("jti-1").await.unwrap());
    store.revoke_token("jti-1", 4_000_000_000).await.unwrap();
    store.revoke_token("jti-1", 4_000_000_000).await.unwrap(); // idempotent
    assert!(other.is_token_revoked("jti-1").await.unwrap());

    store.add_first_signing_key("k1", "pem-1").await.unwrap();
    other.add_first_signing_key("k2", "pem-2").await.unwrap();
    assert_eq!(
        other.signing_keys().await.unwrap(),
        vec![("k1".to_owned(), "pem-1".to_owned())],
        "the first key wins"
    );

    let now = gatehouse::store::unix_now();
    assert_eq!(
        store.record_failure("user:x", now, now - 60).await.unwrap(),
        1
    );
    assert_eq!(
        other.record_failure("user:x", now, now - 60).await.unwrap(),
        2
    );
    assert_eq!(
        store
            .record_failure("user:x", now - 120, now - 60)
            .await
            .unwrap(),
        2,
        "outside the window"
    );
    store.clear_failures("user:x").await.unwrap();
    assert_eq!(
        store.record_failure("user:x", now, now - 60).await.unwrap(),
        1
    );
    store.ban("user:x", now + 600).await.unwrap();
    store.ban("user:x", now + 900).await.unwrap();
    store.ban("ip:192.0.2.1", now - 1).await.unwrap();
    assert_eq!(
        other.active_bans(now).await.unwrap(),
        vec![("user:x".to_owned(), now + 900)]
    );

    let key = store
        .create_api_key(
            "ci",
            "alice",
            "ab12",
            Some(&["posts:read".to_owned()]),
            None,
        )
        .await
        .unwrap();
    let found = other.api_key_by_hash("ab12").await.unwrap().unwrap();
    assert_eq!(
        (found.id, found.permissions.clone()),
        (key.id, Some(vec!["posts:read".to_owned()]))
    );
    assert_eq!(store.list_api_keys(Some("bob")).await.unwrap(), vec![]);
    assert_eq!(store.list_api_keys(None).await.unwrap().len(), 1);
    assert!(matches!(
        store.revoke_api_key(key.id, Some("bob")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.revoke_api_key(key.id, Some("alice")).await.unwrap(),
        "ab12"
    );
    assert!(
        other
            .api_key_by_hash("ab12")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    assert_eq!(store.list_api_keys(None).await.unwrap(), vec![]);
    let kinds: Vec<String> = store
        .changes_since(0)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.kind)
        .collect();
    for kind in ["token", "ban", "apikey"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} in the change feed");
    }
    store.purge(now + 10_000, now + 10_000).await.unwrap();
    assert!(store.active_bans(now).await.unwrap().is_empty());
    second_factors(store, other).await;
}

/// Second factors: enrol, confirm once, each time step and recovery code
/// accepted once (whichever replica asks), pending sign-ins that expire.
async fn second_factors(store: &Store, other: &Store) {
    use gatehouse::store::{PendingLogin, PendingPurpose};
    assert_eq!(store.second_factor("eve").await.unwrap(), None);
    store.begin_second_factor("eve", "v1.first").await.unwrap();
    other.begin_second_factor("eve", "v1.second").await.unwrap(); // restart: replaced
    let f = store.second_factor("eve").await.unwrap().unwrap();
    assert_eq!((f.secret.as_str(), f.confirmed), ("v1.second", false));
    // Re-sealing (a key rotation) swaps the secret only if it is unchanged.
    assert_eq!(
        other.sealed_second_factors().await.unwrap(),
        vec![("eve".to_owned(), "v1.second".to_owned())]
    );
    assert!(!store
        .reseal_second_factor("eve", "v1.first", "v1.x")
        .await
        .unwrap());
    assert!(store
        .reseal_second_factor("eve", "v1.second", "v1.resealed")
        .await
        .unwrap());
    let f = other.second_factor("eve").await.unwrap().unwrap();
    assert_eq!(f.secret, "v1.resealed");
    assert!(
        !store.use_time_step("eve", 100).await.unwrap(),
        "an unconfirmed factor accepts no code"
    );
    let before = store.last_change_id().await.unwrap();
    store
        .confirm_second_factor("eve", 100, vec!["h1".into(), "h2".into()])
        .await
        .unwrap();
    assert!(matches!(
        other.confirm_second_factor("eve", 101, vec![]).await,
        Err(StoreError::NotFound(_))
    ));
    let feed = other.changes_since(before).await.unwrap();
    assert_eq!(
        feed.iter()
            .map(|c| (c.kind.as_str(), c.subject.as_str()))
            .collect::<Vec<_>>(),
        vec![("user", "eve")],
        "other replicas drop eve's cached Basic credentials"
    );
    assert_eq!(
        store.begin_second_factor("eve", "v1.third").await,
        Err(StoreError::Conflict("second factor of `eve`".into())),
        "a confirmed factor is not replaced by a new enrolment"
    );
    assert!(
        !store.use_time_step("eve", 100).await.unwrap(),
        "the confirming step"
    );
    assert!(other.use_time_step("eve", 101).await.unwrap());
    assert!(!store.use_time_step("eve", 101).await.unwrap(), "replayed");
    assert!(!store.use_time_step("eve", 99).await.unwrap(), "older");
    assert_eq!(store.recovery_codes_left("eve").await.unwrap(), 2);
    assert!(store.use_recovery_code("eve", "h1").await.unwrap());
    assert!(
        !other.use_recovery_code("eve", "h1").await.unwrap(),
        "spent"
    );
    assert!(!other.use_recovery_code("eve", "nope").await.unwrap());
    assert!(
        !other.use_recovery_code("alice", "h2").await.unwrap(),
        "not hers"
    );
    assert_eq!(other.recovery_codes_left("eve").await.unwrap(), 1);

    let now = gatehouse::store::unix_now();
    let pending = |id: &str, expires_at| PendingLogin {
        id_hash: id.into(),
        username: "eve".into(),
        purpose: PendingPurpose::Verify,
        return_to: "https://app.example.test/".into(),
        expires_at,
    };
    store
        .create_pending_login(pending("p1", now + 60))
        .await
        .unwrap();
    store
        .create_pending_login(pending("p2", now - 1))
        .await
        .unwrap();
    assert_eq!(
        other.pending_login("p1").await.unwrap(),
        Some(pending("p1", now + 60))
    );
    assert_eq!(other.pending_login("p2").await.unwrap(), None, "expired");
    assert!(other.finish_pending_login("p1").await.unwrap());
    assert!(
        !store.finish_pending_login("p1").await.unwrap(),
        "used once"
    );

    store.delete_second_factor("eve").await.unwrap();
    assert_eq!(other.second_factor("eve").await.unwrap(), None);
    assert_eq!(other.recovery_codes_left("eve").await.unwrap(), 0);
    assert!(matches!(
        other.delete_second_factor("eve").await,
        Err(StoreError::NotFound(_))
    ));
    // Deleting a user takes their second factor along.
    store.begin_second_factor("eve", "v1.x").await.unwrap();
    store.delete_user("eve").await.unwrap();
    assert_eq!(other.second_factor("eve").await.unwrap(), None);
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/dir/gatehouse.db", dir.path().display());
    block_on(conformance(&url));
    assert!(
        dir.path().join("nested/dir/gatehouse.db").exists(),
        "the folder and file are created"
    );
}

#[test]
fn postgres_conforms() {
    let Some(url) = common::postgres_database("conformance") else {
        println!("SKIP postgres_conforms: set GATEHOUSE_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres");
        return;
    };
    block_on(conformance(&url));
}

#[test]
fn bad_urls_are_refused() {
    block_on(async {
        assert!(matches!(
            Store::open("mysql://x").await,
            Err(StoreError::BadUrl(_))
        ));
        assert!(matches!(
            Store::open("sqlite://").await,
            Err(StoreError::BadUrl(_))
        ));
        assert!(matches!(
            Store::open("postgres://nobody@127.0.0.1:1/none?connect_timeout=1").await,
            Err(StoreError::Unavailable(_))
        ));
    });
}
