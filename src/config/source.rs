//! Turning configuration text into a YAML tree, before typed parsing.
//!
//! Owns the three things that happen to the tree: `GATEHOUSE__SECTION__KEY`
//! environment overrides, `*_file` secret indirection, and the `rules:` list
//! shorthand. Also owns [`LineIndex`], which maps a key path back to the line
//! it was written on so errors can name both.

use serde_norway::{Mapping, Value};
use std::collections::HashMap;

use super::ConfigError;

/// Prefix of environment overrides: `GATEHOUSE__SERVER__LISTEN=0.0.0.0:9000`.
pub const ENV_PREFIX: &str = "GATEHOUSE__";

/// Apply environment overrides to the tree. Each `__`-separated segment is a
/// key (lowercased) or, inside a list, an index. The value is parsed as YAML,
/// so `true`, `8080` and `[a, b]` keep their types.
pub fn apply_env_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    vars.sort();
    for (name, raw) in vars {
        let segments: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if segments.iter().any(|s| s.is_empty()) {
            errors.push(ConfigError::env(&name, "malformed variable name"));
            continue;
        }
        let value = match serde_norway::from_str::<Value>(&raw) {
            Ok(Value::Null) if !raw.trim().is_empty() && raw.trim() != "null" => {
                Value::String(raw.clone())
            }
            Ok(v) => v,
            Err(_) => Value::String(raw.clone()),
        };
        if let Err(msg) = set_path(root, &segments, value) {
            errors.push(ConfigError::env(&name, &msg));
        }
    }
    errors
}

fn set_path(node: &mut Value, segments: &[String], value: Value) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        *node = value;
        return Ok(());
    };
    if node.is_null() {
        *node = Value::Mapping(Mapping::new());
    }
    match node {
        Value::Mapping(map) => {
            let key = Value::String(first.clone());
            let child = map.entry(key).or_insert(Value::Null);
            set_path(child, rest, value)
        }
        Value::Sequence(seq) => {
            let idx: usize = first
                .parse()
                .map_err(|_| format!("`{first}` is not a list index"))?;
            if idx == seq.len() {
                seq.push(Value::Null);
            }
            match seq.get_mut(idx) {
                Some(child) => set_path(child, rest, value),
                None => Err(format!("list index {idx} is past the end")),
            }
        }
        _ => Err(format!("cannot set `{first}` inside a plain value")),
    }
}

/// Replace every `name_file: PATH` key by `name: <contents of PATH>` (one
/// trailing newline trimmed). Having both `name` and `name_file` is an error.
pub fn resolve_file_secrets(root: &mut Value, path: &str, errors: &mut Vec<ConfigError>) {
    match root {
        Value::Mapping(map) => {
            let file_keys: Vec<String> = map
                .keys()
                .filter_map(|k| k.as_str())
                .filter(|k| k.ends_with("_file") && k.len() > 5)
                .map(str::to_owned)
                .collect();
            for key in file_keys {
                let target = key.trim_end_matches("_file").to_owned();
                let here = join(path, &key);
                let Some(file_value) = map.remove(key.as_str()) else {
                    continue;
                };
                let Some(file) = file_value.as_str() else {
                    errors.push(ConfigError::at(&here, "must be a file path"));
                    continue;
                };
                if map.contains_key(target.as_str()) {
                    errors.push(ConfigError::at(
                        &here,
                        &format!("set either `{target}` or `{key}`, not both"),
                    ));
                    continue;
                }
                match std::fs::read_to_string(file) {
                    Ok(text) => {
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        let text = text.strip_suffix('\r').unwrap_or(text);
                        map.insert(Value::String(target), Value::String(text.to_owned()));
                    }
                    Err(e) => errors.push(ConfigError::at(
                        &here,
                        &format!("cannot read `{file}`: {e}"),
                    )),
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(k) = k.as_str() {
                    let child = join(path, k);
                    resolve_file_secrets(v, &child, errors);
                }
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                resolve_file_secrets(v, &format!("{path}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// `rules: [ ... ]` is shorthand for `rules: { rules: [ ... ] }`. Returns true
/// when the shorthand was used, so error paths can be shown as written.
pub fn normalize_rules(root: &mut Value) -> bool {
    let Some(map) = root.as_mapping_mut() else {
        return false;
    };
    match map.get_mut("rules") {
        Some(rules @ Value::Sequence(_)) => {
            let list = std::mem::take(rules);
            let mut wrapped = Mapping::new();
            wrapped.insert(Value::String("rules".into()), list);
            *rules = Value::Mapping(wrapped);
            true
        }
        _ => false,
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Maps key paths (`rules[2].path`) to 1-based line numbers of block-style YAML.
/// Flow-style collections are indexed only down to the key that holds them.
#[derive(Debug, Default)]
pub struct LineIndex {
    lines: HashMap<String, usize>,
}

#[derive(Debug)]
struct Frame {
    indent: usize,
    segment: String,
    is_item: bool,
}

impl LineIndex {
    pub fn build(text: &str) -> Self {
        let mut lines = HashMap::new();
        let mut stack: Vec<Frame> = Vec::new();
        let mut counters: HashMap<String, usize> = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
                continue;
            }
            let mut col = line.len() - trimmed.len();
            let mut rest = trimmed;
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    while stack
                        .last()
                        .is_some_and(|f| f.indent > col || (f.indent == col && f.is_item))
                    {
                        stack.pop();
                    }
                    let parent = render(&stack);
                    let idx = counters.entry(parent.clone()).or_insert(0);
                    let segment = format!("[{idx}]");
                    *idx += 1;
                    stack.push(Frame {
                        indent: col,
                        segment,
                        is_item: true,
                    });
                    lines.entry(render(&stack)).or_insert(n + 1);
                    let after = &rest[1..];
                    let inner = after.trim_start();
                    col += 1 + (after.len() - inner.len());
                    rest = inner;
                    if rest.is_empty() {
                        break;
                    }
                    continue;
                }
                if let Some(key) = mapping_key(rest) {
                    while stack.last().is_some_and(|f| f.indent >= col) {
                        stack.pop();
                    }
                    stack.push(Frame {
                        indent: col,
                        segment: key,
                        is_item: false,
                    });
                    let path = render(&stack);
                    counters.remove(&path);
                    lines.entry(path).or_insert(n + 1);
                }
                break;
            }
        }
        LineIndex { lines }
    }

    /// The line of `path`, or of its nearest indexed ancestor.
    pub fn line_of(&self, path: &str) -> Option<usize> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            let cut = p.rfind(['.', '['])?;
            p = &p[..cut];
            if p.is_empty() {
                return None;
            }
        }
    }
}

fn render(stack: &[Frame]) -> String {
    let mut out = String::new();
    for f in stack {
        if !f.is_item && !out.is_empty() {
            out.push('.');
        }
        out.push_str(&f.segment);
    }
    out
}

fn mapping_key(rest: &str) -> Option<String> {
    let (key, _) = if let Some(stripped) = rest.strip_prefix('"') {
        let end = stripped.find('"')?;
        let after = &stripped[end + 1..];
        if !after.starts_with(':') {
            return None;
        }
        (stripped[..end].to_owned(), after)
    } else {
        let pos = rest
            .find(": ")
            .or_else(|| rest.strip_suffix(':').map(|s| s.len()))?;
        let key = &rest[..pos];
        if key.starts_with(['{', '[', '\'', '&', '*', '!', '|', '>']) {
            return None;
        }
        (key.trim_end().to_owned(), &rest[pos..])
    };
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_follows_nested_lists_and_maps() {
        let text = "server:\n  listen: 1\n# c\nrules:\n  - path: /a\n    policy: public\n  - path: /b\n    methods: [GET]\nusers:\n- username: x\n  role: admin\n";
        let idx = LineIndex::build(text);
        assert_eq!(idx.line_of("server.listen"), Some(2));
        assert_eq!(idx.line_of("rules[0].policy"), Some(6));
        assert_eq!(idx.line_of("rules[1].path"), Some(7));
        assert_eq!(idx.line_of("rules[1].methods[0]"), Some(8));
        assert_eq!(idx.line_of("users[0].role"), Some(11));
        assert_eq!(idx.line_of("nope"), None);
    }

    #[test]
    fn env_overrides_set_typed_values_and_list_items() {
        let mut v: Value =
            serde_norway::from_str("server:\n  listen: a\nrules:\n- path: /x\n").unwrap();
        let errs = apply_env_overrides(
            &mut v,
            vec![
                ("GATEHOUSE__SERVER__LISTEN".into(), "127.0.0.1:9".into()),
                ("GATEHOUSE__SERVER__THREADS".into(), "3".into()),
                ("GATEHOUSE__RULES__0__POLICY".into(), "public".into()),
                ("GATEHOUSE__RULES__9__POLICY".into(), "public".into()),
                ("OTHER".into(), "x".into()),
            ],
        );
        assert_eq!(errs.len(), 1, "index past the end is reported");
        assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(v["server"]["threads"].as_u64(), Some(3));
        assert_eq!(v["rules"][0]["policy"].as_str(), Some("public"));
    }
}
