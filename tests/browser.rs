//! The pages in a real browser: headless Chromium (Debian's `chromium`),
//! driven by npm `playwright-core` from `tests/browser/*.mjs`, against the
//! real binary. Found through `GATEHOUSE_TEST_CHROMIUM` (the browser's path);
//! `.ci/run` installs both and sets it. Screenshots land in
//! `target/screenshots/`.

mod common;

use common::*;
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

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = root.join("target/screenshots");
    let out = Command::new("node")
        .arg(root.join("tests/browser/two_factor.mjs"))
        .env("GATEHOUSE_URL", g.url(""))
        .env("GATEHOUSE_USER", "alice")
        .env("GATEHOUSE_PASSWORD", "correct horse battery")
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .output()
        .expect("node runs (install nodejs)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("browser test passed"), "{stdout}");
    for shot in ["login.png", "two-factor.png", "account-enrol.png"] {
        assert!(shots.join(shot).is_file(), "screenshot {shot}");
    }
}
