//! The OpenAPI document at `{prefix}/api/openapi.json`: served to anyone,
//! OpenAPI 3.1, every `$ref` resolving inside it, every 4xx answer naming
//! its error schema; every route under `/api/` in `src/portal/mod.rs` (read
//! as text, the way a reviewer would) documented with its methods, and
//! nothing documented that is not routed; and accepted by a real validator,
//! `openapi-spec-validator` from PyPI, found through
//! `GATEHOUSE_TEST_OPENAPI_VALIDATOR` (the folder to put on `PYTHONPATH`;
//! `.ci/run` installs it), without which that one check prints a SKIP line.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The methods of a path item (the other keys are not operations).
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as one Gatehouse (its own SQLite store, a renamed session
/// cookie) serves it, fetched once per test binary.
fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let store = format!("sqlite://{}", dir.path().join("s.db").display());
        let g = Gatehouse::start(&store_yaml(&store, "session:\n  cookie_name: \"gh_s\"\n"));
        let r = client()
            .get(g.url("/_auth/api/openapi.json"))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "no credentials needed");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        assert!(header("content-type").starts_with("application/json"));
        assert_eq!(header("cache-control"), "no-store");
        let doc: Value = r.json().unwrap();
        g.stop();
        doc
    })
}

/// Every `$ref` in `v`, with where it is.
fn refs(v: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push((at.to_owned(), r.clone())),
                    _ => refs(v, &format!("{at}/{k}"), out),
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                refs(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_1_and_refers_only_to_itself() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap_or("");
    assert!(version.starts_with("3.1"), "openapi: {version:?}");
    assert_eq!(doc["info"]["title"], "Gatehouse");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    // Paths are relative to the configured prefix, given as the server.
    assert_eq!(doc["servers"], serde_json::json!([{"url": "/_auth"}]));

    let mut found = Vec::new();
    refs(doc, "#", &mut found);
    assert!(found.len() > 50, "only {} $refs", found.len());
    for (at, r) in &found {
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: `{r}` points outside the document"));
        assert!(
            doc.pointer(pointer).is_some(),
            "{at}: `{r}` does not resolve"
        );
    }

    // The credentials Gatehouse reads, the cookie by its configured name.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["basic"]["type"], "http");
    assert_eq!(schemes["basic"]["scheme"], "basic");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["api_key"]["type"], "apiKey");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "gh_s");
    // Public endpoints say so; the others need one of the four.
    assert_eq!(doc["security"].as_array().map(Vec::len), Some(4));
    for public in ["/api/login", "/api/register", "/api/password-reset"] {
        assert_eq!(
            doc["paths"][public]["post"]["security"],
            serde_json::json!([{}]),
            "{public}"
        );
    }

    // The error shape is one schema, and every 4xx answer names it (or the
    // admin API's, which adds the `field` at fault).
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error", "message"]));
    let error_refs = [
        "#/components/schemas/ErrorBody",
        "#/components/schemas/AdminErrorOut",
    ];
    let mut answers = 0;
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            // Client generators name their functions after these.
            let id = op["operationId"].as_str().unwrap_or("");
            assert!(
                operation_ids.insert(id),
                "{method} {path}: operationId `{id}` is not unique"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no 2xx answer"
            );
            for (status, resp) in responses.iter().filter(|(s, _)| s.starts_with('4')) {
                let schema = &resp["content"]["application/json"]["schema"]["$ref"];
                assert!(
                    error_refs.iter().any(|r| schema == r),
                    "{method} {path} {status}: not an error schema: {resp}"
                );
                answers += 1;
            }
        }
    }
    assert!(answers > 50, "only {answers} 4xx answers documented");
}

/// The argument list of the call whose `(` is just before `rest`.
fn call_arguments(rest: &str) -> &str {
    let mut depth = 1;
    for (i, c) in rest.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &rest[..i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after: {rest:.80}")
}

/// The method routers called in a route's handler expression, e.g.
/// `get(a::list).post(a::create)` → `get`, `post`. Any other call there
/// (`any(`, `on(`, a layer…) fails, rather than being silently skipped.
fn methods_of(path: &str, handlers: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut word_start_ok = true;
    let mut prev = ' ';
    for c in handlers.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            if word.is_empty() {
                word_start_ok = prev != ':';
            }
            word.push(c);
        } else {
            if c == '(' && !word.is_empty() {
                assert!(
                    word_start_ok && METHODS.contains(&word.as_str()),
                    "{path}: `{word}(` is not a method router this test knows"
                );
                out.push(word.clone());
            }
            word.clear();
        }
        prev = c;
    }
    out
}

/// Every (path, method) the portal routes under `/api/`, read from the
/// router in `src/portal/mod.rs`.
fn routed() -> BTreeSet<(String, String)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/portal/mod.rs");
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = BTreeSet::new();
    for (i, _) in text.match_indices(".route(") {
        let args = call_arguments(&text[i + ".route(".len()..]).trim_start();
        let path = args
            .strip_prefix('"')
            .and_then(|a| a.split('"').next())
            .unwrap_or_else(|| panic!("a route's path is not a literal: {args:.80}"));
        if !path.starts_with("/api/") {
            continue;
        }
        let handlers = &args[path.len() + 2..];
        let methods = methods_of(path, handlers);
        assert!(!methods.is_empty(), "{path}: no method found in {handlers}");
        for method in methods {
            assert!(
                out.insert((path.to_owned(), method.clone())),
                "{method} {path} routed twice"
            );
        }
    }
    out
}

#[test]
fn the_route_reader_sees_chained_and_nested_methods() {
    assert_eq!(
        methods_of(
            "/p",
            ", get(a::get_user)\n .patch(a::x).delete(b::delete_user)"
        ),
        ["get", "patch", "delete"]
    );
    let r = std::panic::catch_unwind(|| methods_of("/p", ", any(a::x)"));
    assert!(r.is_err(), "an unknown router passed unnoticed");
}

#[test]
fn every_routed_api_path_is_documented_and_every_documented_one_routed() {
    let routed = routed();
    assert!(routed.len() > 30, "read only {} routes", routed.len());
    let doc = document();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS.iter().filter(|m| item.get(**m).is_some()) {
            documented.insert((path.clone(), method.to_string()));
        }
    }
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in the OpenAPI document (add #[utoipa::path] and list it in \
         src/portal/api/openapi.rs): {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in the OpenAPI document but not routed: {unrouted:?}"
    );
}

/// `openapi-spec-validator` on `file`: whether it passed, and what it said.
fn validate(pythonpath: &std::ffi::OsStr, file: &Path) -> (bool, String) {
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator", "--schema", "3.1"])
        .arg(file)
        .env("PYTHONPATH", pythonpath)
        .output()
        .expect("run python3");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said.chars().take(3000).collect())
}

#[test]
fn openapi_spec_validator_accepts_the_document() {
    let Some(pythonpath) = std::env::var_os("GATEHOUSE_TEST_OPENAPI_VALIDATOR") else {
        println!("SKIP openapi validation: GATEHOUSE_TEST_OPENAPI_VALIDATOR is not set");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec_pretty(document()).unwrap()).unwrap();
    let (ok, said) = validate(&pythonpath, &file);
    assert!(ok, "openapi-spec-validator refused the document:\n{said}");

    // The validator does look: a document without `info` fails.
    let mut broken = document().clone();
    broken.as_object_mut().unwrap().remove("info");
    std::fs::write(&file, serde_json::to_vec(&broken).unwrap()).unwrap();
    let (ok, said) = validate(&pythonpath, &file);
    assert!(!ok, "a document without `info` passed:\n{said}");
}
