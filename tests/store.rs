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
        status: UserStatus::Enabled,
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
    outbox(&store, &store2).await;
    account_tokens(&store, &store2).await;
    audit_events(&store, &store2).await;
}

/// The audit trail: appended in batches, read newest first with filters
/// and paging, pruned by age.
async fn audit_events(store: &Store, other: &Store) {
    use gatehouse::store::{AuditQuery, AuditRecord};
    let event = |at: i64, actor: &str, action: &str, target: Option<&str>| AuditRecord {
        id: 0,
        at,
        actor: Some(actor.into()),
        action: action.into(),
        target: target.map(str::to_owned),
        ip: Some("192.0.2.7".into()),
        user_agent: Some("probe".into()),
        outcome: "success".into(),
        details: r#"{"why":"test"}"#.into(),
    };
    store
        .append_audit_events(vec![
            event(1_000, "ann", "sign_in", None),
            event(2_000, "root", "user.update", Some("ann")),
            event(3_000, "bob", "sign_in", None),
        ])
        .await
        .unwrap();
    store.append_audit_events(Vec::new()).await.unwrap();
    let all = |q: AuditQuery| async move {
        let (events, total) = other.audit_events(q).await.unwrap();
        let ats: Vec<i64> = events.iter().map(|e| e.at).collect();
        (ats, total)
    };
    let page = |offset, limit| AuditQuery {
        offset,
        limit,
        ..AuditQuery::default()
    };
    assert_eq!(all(page(0, 10)).await, (vec![3_000, 2_000, 1_000], 3));
    assert_eq!(all(page(1, 1)).await, (vec![2_000], 3));
    let about_ann = AuditQuery {
        user: Some("ann".into()),
        ..page(0, 10)
    };
    assert_eq!(
        all(about_ann).await,
        (vec![2_000, 1_000], 2),
        "actor or target"
    );
    let sign_ins = AuditQuery {
        action: Some("sign_in".into()),
        since: Some(1_500),
        ..page(0, 10)
    };
    assert_eq!(all(sign_ins).await, (vec![3_000], 1));
    let before = AuditQuery {
        until: Some(2_000),
        ..page(0, 10)
    };
    assert_eq!(all(before).await, (vec![1_000], 1), "until is exclusive");
    let (events, _) = other.audit_events(page(0, 1)).await.unwrap();
    assert_eq!(events[0].details, r#"{"why":"test"}"#);
    assert_eq!(events[0].ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(store.prune_audit_events(2_500).await.unwrap(), 2);
    assert_eq!(all(page(0, 10)).await, (vec![3_000], 1));
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
    sso(store, other).await;
}

/// Single sign-on: pending sign-ins taken once (whichever replica asks),
/// identities linked by provider, issuer and subject, users created with
/// their link or not at all, and back-channel logout revoking exactly the
/// sessions that came from the provider.
async fn sso(store: &Store, other: &Store) {
    use gatehouse::store::{SessionRecord, SessionSso, SsoIdentity, SsoPending};
    let now = gatehouse::store::unix_now();
    let pending = |state: &str, expires_at| SsoPending {
        state_hash: state.into(),
        provider: "corp".into(),
        nonce: format!("nonce-{state}"),
        pkce_verifier: format!("verifier-{state}"),
        return_to: "https://app.example.test/after".into(),
        expires_at,
    };
    store
        .create_sso_pending(pending("s1", now + 300))
        .await
        .unwrap();
    assert_eq!(
        store.take_sso_pending("s1", now).await.unwrap(),
        Some(pending("s1", now + 300))
    );
    assert_eq!(
        store.take_sso_pending("s1", now).await.unwrap(),
        None,
        "used once"
    );
    assert_eq!(
        other.take_sso_pending("s1", now).await.unwrap(),
        None,
        "on any replica"
    );
    assert_eq!(other.take_sso_pending("nope", now).await.unwrap(), None);
    store
        .create_sso_pending(pending("s2", now + 300))
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        store.take_sso_pending("s2", now),
        other.take_sso_pending("s2", now)
    );
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().flatten().count(),
        1,
        "two replicas racing: one wins"
    );
    store
        .create_sso_pending(pending("s3", now - 1))
        .await
        .unwrap();
    assert_eq!(
        other.take_sso_pending("s3", now).await.unwrap(),
        None,
        "expired"
    );
    store
        .create_sso_pending(pending("s4", now + 60))
        .await
        .unwrap();
    assert_eq!(
        store.take_sso_pending("s4", now + 60).await.unwrap(),
        None,
        "expired at the given time"
    );
    store
        .create_sso_pending(pending("s5", now - 10))
        .await
        .unwrap();
    store.purge(now, now - 100_000).await.unwrap();
    assert_eq!(
        store.take_sso_pending("s5", now - 100).await.unwrap(),
        None,
        "purged"
    );

    let id = |provider: &str, subject: &str| SsoIdentity {
        provider: provider.into(),
        issuer: "https://idp.example.test".into(),
        subject: subject.into(),
    };
    let alice_at_corp = id("corp", "sub-alice");
    assert_eq!(store.sso_linked_user(&alice_at_corp).await.unwrap(), None);
    store.link_sso(&alice_at_corp, "alice").await.unwrap();
    assert_eq!(
        other.sso_linked_user(&alice_at_corp).await.unwrap(),
        Some("alice".to_owned())
    );
    assert!(
        matches!(
            other.link_sso(&alice_at_corp, "bob").await,
            Err(StoreError::Conflict(_))
        ),
        "an identity links to one user"
    );
    let mut elsewhere = alice_at_corp.clone();
    elsewhere.issuer = "https://other-idp.example.test".into();
    assert_eq!(
        store.sso_linked_user(&elsewhere).await.unwrap(),
        None,
        "the same subject at another issuer is someone else"
    );
    store.touch_sso_link(&alice_at_corp, now).await.unwrap();
    assert!(matches!(
        store.touch_sso_link(&elsewhere, now).await,
        Err(StoreError::NotFound(_))
    ));

    let alice_before = store.user("alice").await.unwrap();
    let frank_at_corp = id("corp", "sub-frank");
    assert_eq!(
        store
            .create_sso_user(new_user("alice", None), &frank_at_corp)
            .await,
        Err(StoreError::Conflict("alice".into())),
        "the name is taken"
    );
    assert_eq!(
        other.sso_linked_user(&frank_at_corp).await.unwrap(),
        None,
        "no link without its user"
    );
    assert_eq!(other.user("alice").await.unwrap(), alice_before);
    let frank = store
        .create_sso_user(
            new_user("frank", Some("frank@example.test")),
            &frank_at_corp,
        )
        .await
        .unwrap();
    assert_eq!(
        (frank.record.username.as_str(), frank.record.status),
        ("frank", UserStatus::Enabled)
    );
    assert_eq!(other.user("frank").await.unwrap(), Some(frank));
    assert_eq!(
        other.sso_linked_user(&frank_at_corp).await.unwrap(),
        Some("frank".to_owned())
    );
    assert!(
        matches!(
            store
                .create_sso_user(new_user("grace", None), &frank_at_corp)
                .await,
            Err(StoreError::Conflict(_))
        ),
        "the identity is linked already"
    );
    assert_eq!(other.user("grace").await.unwrap(), None, "nothing written");
    store.delete_user("frank").await.unwrap();
    assert_eq!(
        other.sso_linked_user(&frank_at_corp).await.unwrap(),
        None,
        "deleting a user takes their links along"
    );

    let session =
        |id_hash: &str, username: &str, expires_at, sso: Option<(&str, &str, Option<&str>)>| {
            SessionRecord {
                id_hash: id_hash.into(),
                username: username.into(),
                created_at: now,
                last_seen_at: now,
                expires_at,
                revoked: false,
                ip: Some("192.0.2.1".into()),
                user_agent: Some("test".into()),
                sso: sso.map(|(provider, subject, sid)| SessionSso {
                    provider: provider.into(),
                    subject: subject.into(),
                    sid: sid.map(str::to_owned),
                    id_token: format!("eyJ.{id_hash}.sig"),
                }),
            }
        };
    let records = [
        session(
            "sa",
            "alice",
            now + 600,
            Some(("corp", "sub-alice", Some("sid-1"))),
        ),
        session(
            "sb",
            "alice",
            now + 600,
            Some(("corp", "sub-alice", Some("sid-2"))),
        ),
        session(
            "sc",
            "alice",
            now + 600,
            Some(("partner", "sub-alice", Some("sid-1"))),
        ),
        session("sd", "alice", now + 600, None),
        session("se", "bob", now + 600, Some(("corp", "sub-bob", None))),
        session("sf", "bob", now - 1, Some(("corp", "sub-bob", None))),
    ];
    for r in &records {
        store.create_session(r.clone()).await.unwrap();
    }
    for r in &records {
        assert_eq!(
            other.session(&r.id_hash).await.unwrap().as_ref(),
            Some(r),
            "the session's origin round-trips"
        );
    }
    let before = store.last_change_id().await.unwrap();
    assert_eq!(
        other
            .revoke_sso_sessions("corp", None, Some("sid-1"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .revoke_sso_sessions("corp", Some("sub-alice"), Some("sid-9"))
            .await
            .unwrap(),
        0,
        "subject and sid must both match"
    );
    assert_eq!(
        store.revoke_sso_sessions("corp", None, None).await.unwrap(),
        0,
        "no subject and no sid: nothing"
    );
    let revoked = |ids: &[&str]| {
        let other = other.clone();
        let ids: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
        async move {
            let mut out = Vec::new();
            for id in ids {
                out.push(other.session(&id).await.unwrap().unwrap().revoked);
            }
            out
        }
    };
    assert_eq!(
        revoked(&["sa", "sb", "sc", "sd", "se"]).await,
        vec![true, false, false, false, false],
        "only corp's session with that sid"
    );
    assert_eq!(
        store
            .revoke_sso_sessions("corp", Some("sub-alice"), None)
            .await
            .unwrap(),
        1,
        "the rest of alice's sessions from corp"
    );
    assert_eq!(
        revoked(&["sa", "sb", "sc", "sd", "se"]).await,
        vec![true, true, false, false, false],
        "another provider's session and a password session stay"
    );
    assert_eq!(
        store
            .revoke_sso_sessions("corp", Some("sub-bob"), None)
            .await
            .unwrap(),
        1,
        "an expired session is not counted"
    );
    let feed = other.changes_since(before).await.unwrap();
    assert_eq!(
        feed.iter()
            .map(|c| (c.kind.as_str(), c.subject.as_str()))
            .collect::<Vec<_>>(),
        vec![("session", "sa"), ("session", "sb"), ("session", "se")],
        "every replica's cache drops each revoked session"
    );
}

/// The outbox: a mail is claimed by one handle at a time (a lease), a
/// failed one is due again at its next attempt, a sent one never again, and
/// sent mail is purged after a week; two handles draining many mails at once
/// claim each exactly once.
async fn outbox(store: &Store, other: &Store) {
    use gatehouse::store::OutgoingMail;
    let mail = |i: usize| OutgoingMail {
        to: format!("User {i} <user{i}@example.test>"),
        subject: format!("Mail {i}"),
        text: format!("text {i}"),
        html: i.is_multiple_of(2).then(|| format!("<p>{i}</p>")),
    };
    let now = gatehouse::store::unix_now();
    assert_eq!(store.claim_mail(now, 60).await.unwrap(), None, "empty");
    let a = store.enqueue_mail(&mail(0)).await.unwrap();
    let b = other.enqueue_mail(&mail(1)).await.unwrap();
    assert!(b > a);
    assert_eq!(store.unsent_mail_count().await.unwrap(), 2);

    let got = store
        .claim_mail(now, 60)
        .await
        .unwrap()
        .expect("a due mail");
    assert_eq!(
        (got.id, &got.mail, got.attempts, got.last_error.as_deref()),
        (a, &mail(0), 0, None),
        "oldest first, as enqueued"
    );
    let got_b = other
        .claim_mail(now, 60)
        .await
        .unwrap()
        .expect("the next one");
    assert_eq!(
        (got_b.id, &got_b.mail),
        (b, &mail(1)),
        "no HTML kept as none"
    );
    assert_eq!(
        store.claim_mail(now, 60).await.unwrap(),
        None,
        "both leased"
    );
    assert_eq!(
        other.claim_mail(now + 59, 60).await.unwrap(),
        None,
        "leased, also for another handle"
    );
    let lapsed = other
        .claim_mail(now + 60, 60)
        .await
        .unwrap()
        .expect("lease over");
    assert_eq!(lapsed.id, a, "a sender that died gives its mail back");

    store
        .mark_mail_failed(a, now + 90, "cannot connect")
        .await
        .unwrap();
    let e = other.outbox_entry(a).await.unwrap().unwrap();
    assert_eq!(
        (
            e.attempts,
            e.next_attempt_at,
            e.claimed_until,
            e.sent_at,
            e.last_error.as_deref()
        ),
        (1, now + 90, None, None, Some("cannot connect"))
    );
    assert_eq!(e.mail, mail(0));
    assert_eq!(
        store.claim_mail(now + 89, 60).await.unwrap().map(|m| m.id),
        Some(b),
        "b's lease is over, a is not due yet"
    );
    assert_eq!(
        other.claim_mail(now + 89, 60).await.unwrap(),
        None,
        "a not due"
    );
    let retry = other
        .claim_mail(now + 90, 60)
        .await
        .unwrap()
        .expect("due again");
    assert_eq!(
        (retry.id, retry.attempts, retry.last_error.as_deref()),
        (a, 1, Some("cannot connect"))
    );
    store.mark_mail_sent(a).await.unwrap();
    other.mark_mail_sent(b).await.unwrap();
    assert_eq!(
        store.claim_mail(now + 1_000_000, 60).await.unwrap(),
        None,
        "sent mail is never claimed again"
    );
    let sent = store.outbox_entry(a).await.unwrap().unwrap();
    assert!(sent.sent_at.is_some_and(|t| t >= now) && sent.claimed_until.is_none());
    assert_eq!(store.unsent_mail_count().await.unwrap(), 0);
    store.purge(now + 86_400, now - 3600).await.unwrap();
    assert!(
        store.outbox_entry(a).await.unwrap().is_some(),
        "kept a week"
    );
    store.purge(now + 8 * 86_400, now - 3600).await.unwrap();
    assert_eq!(store.outbox_entry(a).await.unwrap(), None, "then purged");

    // Two handles (two replicas) drain 40 mails at once.
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(store.enqueue_mail(&mail(100 + i)).await.unwrap());
    }
    let t = gatehouse::store::unix_now();
    let drain = |s: Store| async move {
        let mut got = Vec::new();
        while let Some(m) = s.claim_mail(t, 600).await.unwrap() {
            got.push(m.id);
        }
        got
    };
    let (x, y) = tokio::join!(drain(store.clone()), drain(other.clone()));
    let mut all: Vec<i64> = x.iter().chain(&y).copied().collect();
    all.sort();
    assert_eq!(
        all,
        ids,
        "every mail claimed exactly once ({} + {})",
        x.len(),
        y.len()
    );
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
        match Store::open("postgres://nobody@127.0.0.1:1/none?connect_timeout=1").await {
            Err(StoreError::CannotOpen(why)) => assert_eq!(
                why,
                "cannot reach PostgreSQL at 127.0.0.1:1: connection refused"
            ),
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("opened a store on port 1"),
        }
    });
}

/// Mailed links: stored with their mail in one transaction, used once (also
/// across handles), never after expiry; a user created through a link that
/// conflicts leaves the link usable.
async fn account_tokens(store: &Store, other: &Store) {
    use gatehouse::store::{AccountToken, OutgoingMail, TokenPurpose};
    let now = gatehouse::store::unix_now();
    let token = |hash: &str, id: &str, purpose, expires_at| AccountToken {
        token_hash: hash.into(),
        id: id.into(),
        purpose,
        username: Some("linked".into()),
        email: Some("linked@example.test".into()),
        role: Some("user".into()),
        password_hash: None,
        created_by: Some("test".into()),
        created_at: now,
        expires_at,
        used_at: None,
    };
    let mail = OutgoingMail {
        to: "linked@example.test".into(),
        subject: "Your link".into(),
        text: "link".into(),
        html: None,
    };
    let unsent = store.unsent_mail_count().await.unwrap();
    store
        .create_account_token(
            token("h-reset", "id-reset", TokenPurpose::Reset, now + 600),
            Some(mail),
        )
        .await
        .unwrap();
    assert_eq!(
        store.unsent_mail_count().await.unwrap(),
        unsent + 1,
        "the mail came with it"
    );
    assert!(store
        .account_token("h-reset", TokenPurpose::Reset, now)
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .account_token("h-reset", TokenPurpose::Activation, now)
            .await
            .unwrap()
            .is_none(),
        "a link is only good for its purpose"
    );
    assert!(store
        .use_account_token("h-reset", TokenPurpose::Reset, now)
        .await
        .unwrap()
        .is_some());
    assert!(other
        .use_account_token("h-reset", TokenPurpose::Reset, now)
        .await
        .unwrap()
        .is_none());
    assert!(store
        .use_account_token("h-reset", TokenPurpose::Reset, now)
        .await
        .unwrap()
        .is_none());

    store
        .create_account_token(token("h-old", "id-old", TokenPurpose::Reset, now - 1), None)
        .await
        .unwrap();
    assert!(store
        .use_account_token("h-old", TokenPurpose::Reset, now)
        .await
        .unwrap()
        .is_none());

    // An invitation whose user cannot be created stays usable.
    store
        .create_user(new_user("taken-name", None))
        .await
        .unwrap();
    store
        .create_account_token(
            token("h-inv", "id-inv", TokenPurpose::Invitation, now + 600),
            None,
        )
        .await
        .unwrap();
    let clash = store
        .create_user_with_token(
            "h-inv",
            TokenPurpose::Invitation,
            new_user("taken-name", None),
            now,
        )
        .await;
    assert!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    assert_eq!(store.invitations(now).await.unwrap().len(), 1);
    let made = other
        .create_user_with_token(
            "h-inv",
            TokenPurpose::Invitation,
            new_user("invited", None),
            now,
        )
        .await
        .unwrap();
    assert_eq!(made.map(|u| u.record.username).as_deref(), Some("invited"));
    assert!(store.invitations(now).await.unwrap().is_empty());

    store
        .create_account_token(
            token("h-inv2", "id-inv2", TokenPurpose::Invitation, now + 600),
            None,
        )
        .await
        .unwrap();
    assert!(other.revoke_invitation("id-inv2", now).await.unwrap());
    assert!(!store.revoke_invitation("id-inv2", now).await.unwrap());
    assert!(store
        .account_token("h-inv2", TokenPurpose::Invitation, now)
        .await
        .unwrap()
        .is_none());
}
