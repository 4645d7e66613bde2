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
        Err(StoreError::NotFound("ghost".into()))
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
        Err(StoreError::NotFound("robot".into()))
    );
    assert_eq!(store.user("robot").await.unwrap(), None);
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
