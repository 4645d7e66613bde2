//! The credential cache from the outside: argon2 runs once per credential,
//! even for concurrent first requests, and unknown users cost the same work.
//! (Counted through the `gatehouse_password_verifications_total` metric.)

mod common;

use common::*;

fn verifications(g: &Gatehouse) -> u64 {
    g.metrics()
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_password_verifications_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("verification counter missing")
}

// One test per binary: the counter is process-wide, so nothing may run beside it.
#[test]
fn argon2_runs_once_per_credential_and_for_unknown_users_too() {
    let hash = hash_password("pw-dana");
    let g = Gatehouse::start(&format!(
        r#"
server: {{ listen: "127.0.0.1:{{port}}", metrics_listen: "127.0.0.1:{{metrics_port}}" }}
upstream: {{ url: "echo:" }}
users:
  - {{ username: dana, password_hash: "{hash}" }}
  - {{ username: nopass }}
"#
    ));
    assert_eq!(verifications(&g), 0);

    // 16 concurrent first requests with one credential: one verification.
    let url = g.url("/x");
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                client()
                    .get(url)
                    .basic_auth("dana", Some("pw-dana"))
                    .send()
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 200);
    }
    assert_eq!(
        verifications(&g),
        1,
        "argon2 ran more than once for one credential"
    );
    for _ in 0..5 {
        assert_eq!(
            client()
                .get(&url)
                .basic_auth("dana", Some("pw-dana"))
                .send()
                .unwrap()
                .status(),
            200
        );
    }
    assert_eq!(verifications(&g), 1, "cached credential re-verified");

    // A different password is a different credential (and is not cached when wrong).
    for _ in 0..2 {
        assert_eq!(
            client()
                .get(&url)
                .basic_auth("dana", Some("wrong"))
                .send()
                .unwrap()
                .status(),
            401
        );
    }
    assert_eq!(verifications(&g), 3);

    // Unknown users and users without a password cost one verification each.
    assert_eq!(
        client()
            .get(&url)
            .basic_auth("nobody", Some("x"))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(verifications(&g), 4, "unknown user skipped the dummy hash");
    assert_eq!(
        client()
            .get(&url)
            .basic_auth("nopass", Some(""))
            .send()
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        verifications(&g),
        5,
        "password-less user skipped the dummy hash"
    );

    // At least the five sequential requests were hits (late starters among
    // the concurrent ones may be hits too).
    let hits: u64 = g
        .metrics()
        .lines()
        .find_map(|l| l.strip_prefix("gatehouse_identity_cache_total{result=\"hit\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(hits >= 5, "{hits} cache hits");
}
