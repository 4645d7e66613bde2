//! The code's layout holds: no two top-level modules import each other,
//! directly or through others, so every concern has one home and one
//! direction. Reads `src/` as text (`crate::module` paths outside test
//! modules), the way a reviewer would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module → the top-level modules it names.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().and_then(|e| e.to_str()) != Some("rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel.components().next().unwrap().as_os_str();
            let module = first.to_string_lossy().trim_end_matches(".rs").to_owned();
            if matches!(module.as_str(), "lib" | "main") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            let names = graph.entry(module.clone()).or_default();
            for used in crate_paths(code) {
                if used != module {
                    names.insert(used);
                }
            }
        }
    }
    graph
}

/// Every `x` in `crate::x`, including inside `use crate::{x, y::z}`.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find("};").unwrap_or(group.len())];
            let mut depth = 0;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && !c.is_whitespace() => {
                        start = false;
                        let name = ident(&group[j..]);
                        if !name.is_empty() && name != "self" {
                            out.insert(name);
                        }
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

/// A cycle through `from`, if any (depth-first).
fn cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    from: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(pos) = path.iter().position(|m| m == from) {
        let mut found = path[pos..].to_vec();
        found.push(from.to_owned());
        return Some(found);
    }
    if !done.insert(from.to_owned()) {
        return None;
    }
    path.push(from.to_owned());
    for next in graph.get(from).into_iter().flatten() {
        if let Some(found) = cycle(graph, next, path, done) {
            return Some(found);
        }
    }
    path.pop();
    None
}

#[test]
fn the_parser_sees_grouped_and_plain_paths() {
    let code = "use crate::a::B;\nuse crate::{c::{D, e}, f, self};\nlet x = crate::g::h();";
    let got: Vec<String> = crate_paths(code).into_iter().collect();
    assert_eq!(got, ["a", "c", "f", "g"]);
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports();
    assert!(graph.len() > 10, "read only {} modules", graph.len());
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        let mut path = Vec::new();
        let mut seen = BTreeSet::new();
        if let Some(found) = cycle(&graph, module, &mut path, &mut seen) {
            panic!("import circle: {}", found.join(" → "));
        }
        done.insert(module.clone());
    }
}

/// The request's path through the code, first to last. A module may use its
/// own layer and earlier ones, never a later one; a new module must be placed.
const LAYERS: &[(&str, &[&str])] = &[
    ("configuration", &["config"]),
    ("reading the request", &["request", "credentials"]),
    (
        "identity, cache and store",
        &[
            "permission",
            "identity",
            "directory",
            "store",
            "session",
            "tokens",
            "two_factor",
            "regulation",
            "redirect",
            "metrics",
            "authn",
            "sso",
            "accounts",
            "mail",
            "audit",
        ],
    ),
    ("policy decision", &["policy", "gate"]),
    ("answer or upstream headers", &["respond", "upstream"]),
    (
        "on top: assembly, modes, pages, commands",
        &[
            "settings",
            "app",
            "forward_auth",
            "portal",
            "proxy",
            "server",
            "commands",
            "fuzzing",
        ],
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, ms)| ms.contains(&module))
}

#[test]
fn no_module_imports_one_later_in_the_request_path() {
    let graph = imports();
    let mut wrong = Vec::new();
    for (module, used) in &graph {
        let Some(layer) = layer_of(module) else {
            wrong.push(format!("`{module}` has no layer in tests/layout.rs"));
            continue;
        };
        for u in used {
            match layer_of(u) {
                Some(l) if l > layer => wrong.push(format!(
                    "`{module}` ({}) imports `{u}` ({})",
                    LAYERS[layer].0, LAYERS[l].0
                )),
                _ => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn configuration_imports_nothing_of_the_crate() {
    let graph = imports();
    assert_eq!(graph.get("config"), Some(&BTreeSet::new()));
}
