//! What the container image (`Dockerfile`) relies on: `gatehouse healthcheck`
//! (its `HEALTHCHECK`, as there is no shell or curl in the image) and the
//! default config it ships, `config/container.yaml`.

mod common;

use common::*;
use std::process::Command;

fn healthcheck(url: &str) -> (i32, String, String) {
    gatehouse_cmd(&["healthcheck", "--url", url], None)
}

#[test]
fn healthcheck_exits_0_on_a_running_gatehouse() {
    let g = Gatehouse::start(
        "server: { listen: \"127.0.0.1:{port}\" }\nupstream: { url: \"echo:\" }\n",
    );
    let (code, out, err) = healthcheck(&g.url("/_auth/healthz"));
    assert_eq!(code, 0, "{err}");
    assert_eq!((out.as_str(), err.as_str()), ("", ""), "quiet when healthy");

    // A non-2xx answer is unhealthy, and says what came back.
    let (code, _, err) = healthcheck(&g.url("/private"));
    assert_eq!(code, 1);
    assert!(err.contains("401"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
}

#[test]
fn healthcheck_exits_1_with_a_reason_when_nothing_listens() {
    let port = free_port();
    let (code, out, err) = healthcheck(&format!("http://127.0.0.1:{port}/_auth/healthz"));
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert!(
        err.starts_with("gatehouse healthcheck: cannot connect to 127.0.0.1:"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");

    for bad in ["not a url", "https://127.0.0.1:1/_auth/healthz"] {
        let (code, _, err) = healthcheck(bad);
        assert_eq!(code, 1, "{bad}");
        assert!(err.contains("--url"), "{bad}: {err}");
    }
}

#[test]
fn healthcheck_defaults_to_the_container_listener() {
    let (code, out, _) = gatehouse_cmd(&["healthcheck", "--help"], None);
    assert_eq!(code, 0);
    assert!(out.contains("http://127.0.0.1:8080/_auth/healthz"), "{out}");
}

/// `gatehouse check-config` on the image's config, with `env` set.
fn check_container_config(env: &[(&str, &str)]) -> (bool, String) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/container.yaml");
    let mut cmd = Command::new(BIN);
    cmd.args(["check-config", "-c", path]);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("GATEHOUSE_")) {
        cmd.env_remove(k);
    }
    let out = cmd.envs(env.iter().copied()).output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_container_config_needs_only_the_upstream_from_the_environment() {
    let (ok, text) =
        check_container_config(&[("GATEHOUSE__UPSTREAM__URL", "http://localhost:3000")]);
    assert!(ok, "{text}");

    let (ok, text) = check_container_config(&[]);
    assert!(!ok, "no upstream, no start");
    assert!(text.contains("upstream.url"), "{text}");
}
