//! `/metrics` tells an operator what happened, in Prometheus' words: the
//! credential label is `auth_method` (not the HTTP method), a forbidden
//! request names the credential that identified the caller, portal traffic
//! is counted, sign-ins are counted by channel, bans, the cache hit ratio,
//! store latency, the build and the process are there; and the demo serves
//! it too.

mod common;

use base64::Engine;
use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BOB_PW: &str = "bob-password-1";

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// The value of the series `name{labels}` (labels as Prometheus prints
/// them, sorted), or None when it is not exposed.
fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

fn get(g: &Gatehouse, path: &str, auth: Option<&str>) -> u16 {
    let mut r = client().get(g.url(path));
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    r.send().map(|r| r.status().as_u16()).unwrap_or(0)
}

fn start() -> Gatehouse {
    let bob = hash_password(BOB_PW);
    Gatehouse::start(&format!(
        r#"
server:
  listen: "127.0.0.1:{{port}}"
  metrics_listen: "127.0.0.1:{{metrics_port}}"
public_url: "http://127.0.0.1:{{port}}"
upstream:
  url: "echo:"
roles:
  reader: ["posts:read"]
rules:
  - path: /admin/**
    permission: "admin:access"
regulation:
  max_retries: 3
  find_time: 5m
  ban_time: 10m
users:
  - username: bob
    password_hash: "{bob}"
    role: reader
"#
    ))
}

#[test]
fn decisions_are_counted_by_auth_method_portal_included() {
    let g = start();
    let before = g.metrics();
    let series = |d: &str, m: &str| {
        format!("gatehouse_requests_total{{auth_method=\"{m}\",decision=\"{d}\"}}")
    };
    let count = |text: &str, d: &str, m: &str| value(text, &series(d, m)).unwrap_or(-1.0);

    let bob = basic("bob", BOB_PW);
    assert_eq!(get(&g, "/app", Some(&bob)), 200);
    assert_eq!(get(&g, "/admin/x", Some(&bob)), 403);
    assert_eq!(get(&g, "/admin/y", Some(&bob)), 403);
    assert_eq!(get(&g, "/app", None), 401);
    assert_eq!(get(&g, "/_auth/healthz", None), 200);
    assert_eq!(get(&g, "/_auth/info", None), 200);
    let after = g.metrics();

    let delta = |d: &str, m: &str| count(&after, d, m) - count(&before, d, m);
    assert_eq!(delta("allow", "basic"), 1.0, "{after}");
    // The forbidden requests were made by a known Basic user.
    assert_eq!(delta("forbidden", "basic"), 2.0, "{after}");
    assert_eq!(delta("forbidden", "none"), 0.0, "{after}");
    assert_eq!(delta("unauthenticated", "none"), 1.0, "{after}");
    // Portal requests are counted (start-up's health checks too: >= 2).
    assert_eq!(delta("portal", "none"), 2.0, "{after}");

    // The label is auth_method; none says `method=`, and no series that
    // cannot happen is shown (an allowed request always has a credential).
    assert!(
        !after.contains("{method=\"") && !after.contains(",method=\""),
        "{after}"
    );
    assert_eq!(value(&after, &series("allow", "none")), None, "{after}");
    assert_eq!(value(&after, &series("portal", "basic")), None, "{after}");
    assert!(!after.contains("bob") && !after.contains("/admin"));
}

#[test]
fn sign_ins_bans_cache_store_build_and_process_are_exposed() {
    let g = start();
    let bob = basic("bob", BOB_PW);
    assert_eq!(get(&g, "/app", Some(&bob)), 200); // verified: a sign-in
    assert_eq!(get(&g, "/app", Some(&bob)), 200); // from the cache
    assert_eq!(get(&g, "/app", Some(&bob)), 200);
    // Three wrong passwords for carol ban the name carol.
    for _ in 0..3 {
        assert_eq!(get(&g, "/app", Some(&basic("carol", "wrong"))), 401);
    }
    assert_eq!(get(&g, "/app", Some(&basic("carol", "wrong"))), 429);
    let m = g.metrics();

    let sign_ins = |result: &str| {
        value(
            &m,
            &format!("gatehouse_sign_ins_total{{channel=\"basic\",result=\"{result}\"}}"),
        )
    };
    assert_eq!(sign_ins("success"), Some(1.0), "{m}");
    assert_eq!(sign_ins("failure"), Some(3.0), "{m}");
    for channel in ["page", "api", "sso", "setup"] {
        for result in ["success", "failure"] {
            let s =
                format!("gatehouse_sign_ins_total{{channel=\"{channel}\",result=\"{result}\"}}");
            assert_eq!(value(&m, &s), Some(0.0), "{s} is shown from the start");
        }
    }
    assert_eq!(
        value(&m, "gatehouse_bans_total{scope=\"user\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(value(&m, "gatehouse_bans_total{scope=\"ip\"}"), Some(0.0));

    // 2 hits out of 2 + 1 + 3 lookups.
    let ratio = value(&m, "gatehouse_identity_cache_hit_ratio").expect("hit ratio");
    assert!((ratio - 2.0 / 6.0).abs() < 1e-9, "{ratio}\n{m}");

    let store_ops = value(&m, "gatehouse_store_query_seconds_count").expect("store latency");
    assert!(store_ops >= 3.0, "failures were recorded in the store: {m}");

    assert_eq!(
        value(
            &m,
            &format!(
                "gatehouse_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        Some(1.0),
        "{m}"
    );
    for process in ["process_resident_memory_bytes", "process_open_fds"] {
        assert!(
            value(&m, process).is_some_and(|v| v > 0.0),
            "{process}: {m}"
        );
    }
    // Whole seconds (the collector's counter is an integer): 0 this early.
    assert!(value(&m, "process_cpu_seconds_total").is_some(), "{m}");
}

#[test]
fn api_and_page_sign_ins_are_counted_by_channel() {
    let g = start();
    let ok = client()
        .post(g.url("/_auth/api/login"))
        .json(&serde_json::json!({"username": "bob", "password": BOB_PW}))
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let bad = client()
        .post(g.url("/_auth/api/login"))
        .json(&serde_json::json!({"username": "nobody", "password": "x"}))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 401);
    let m = g.metrics();
    for (result, n) in [("success", 1.0), ("failure", 1.0)] {
        let s = format!("gatehouse_sign_ins_total{{channel=\"api\",result=\"{result}\"}}");
        assert_eq!(value(&m, &s), Some(n), "{s}\n{m}");
    }
}

#[test]
fn the_demo_serves_metrics_and_prints_where() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--metrics-listen",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .current_dir(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let want = format!("http://127.0.0.1:{metrics_port}/metrics");
    let printed = lines
        .by_ref()
        .take(40)
        .map_while(Result::ok)
        .any(|l| l.contains("metrics:") && l.contains(&want));
    let mut body = String::new();
    eventually("the demo's metrics answer", || {
        body = reqwest::blocking::get(&want)
            .and_then(|r| r.text())
            .unwrap_or_default();
        body.contains("gatehouse_build_info")
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(printed, "the demo did not print {want}");
}
