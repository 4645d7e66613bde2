//! Turning configuration text into a YAML tree, before typed parsing.
//!
//! Owns the three things that happen to the tree: `GATEHOUSE__SECTION__KEY`
//! environment overrides, `*_file` secret indirection, and the `rules:` list
//! shorthand. Also owns [`LineIndex`], which maps a key path back to the line
//! it was written on so errors can name both.

use serde_norway::{Mapping, Value};
use std::cmp::Ordering;
use std::collections::HashMap;

use super::origin::{as_written, Origins};
use super::ConfigError;

/// Prefix of environment overrides: `GATEHOUSE__SERVER__LISTEN=0.0.0.0:9000`.
pub const ENV_PREFIX: &str = "GATEHOUSE__";

/// What a `*_file` key that could not be read leaves in its place (a
/// stand-in: the error is the `_file` key's).
const UNREADABLE_SECRET: &str = "(unreadable secret file)";

/// Apply environment overrides to the tree (with `rules` in its long form,
/// see [`normalize_rules`]). Each `__`-separated segment is a key
/// (lowercased) or, for a list, an index; a list or item the file lacks is
/// created. The value is parsed as YAML, so `true`, `8080` and `[a, b]` keep
/// their types. What each variable set is recorded in `origins`.
pub fn apply_env_overrides(
    root: &mut Value,
    vars: impl IntoIterator<Item = (String, String)>,
    origins: &mut Origins,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    // `…__2__…` before `…__10__…`: a list is filled in index order.
    vars.sort_by(|(a, _), (b, _)| by_segments(a, b));
    for (name, raw) in vars {
        let mut segments: Vec<String> = name[ENV_PREFIX.len()..]
            .split("__")
            .map(|s| s.to_ascii_lowercase())
            .collect();
        if segments.iter().any(|s| s.is_empty()) {
            errors.push(ConfigError::env(&name, "malformed variable name"));
            continue;
        }
        // `GATEHOUSE__RULES__0__…` is an item of the list under `rules.rules`.
        if segments[0] == "rules" && segments.get(1).is_some_and(|s| is_index(s)) {
            segments.insert(1, "rules".to_owned());
        }
        let value = match serde_norway::from_str::<Value>(&raw) {
            Ok(Value::Null) if !raw.trim().is_empty() && raw.trim() != "null" => {
                Value::String(raw.clone())
            }
            Ok(v) => v,
            Err(_) => Value::String(raw.clone()),
        };
        let mut set = Vec::new();
        match set_path(root, "", &segments, value, &mut set) {
            Ok(()) => {
                for path in set {
                    origins.set_by_env(&as_written(&path), &name, &raw);
                }
            }
            Err(msg) => errors.push(ConfigError::env(&name, &msg)),
        }
    }
    errors
}

fn is_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

/// Variable names compared segment by segment, indexes as numbers.
fn by_segments(a: &str, b: &str) -> Ordering {
    let mut a = a.split("__");
    let mut b = b.split("__");
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Set `value` at `segments` below `node` (at tree path `at`), creating what
/// is missing: a mapping for a key, a list for an index. `set` receives the
/// paths created and the path set.
fn set_path(
    node: &mut Value,
    at: &str,
    segments: &[String],
    value: Value,
    set: &mut Vec<String>,
) -> Result<(), String> {
    let Some((first, rest)) = segments.split_first() else {
        *node = value;
        set.push(at.to_owned());
        return Ok(());
    };
    if node.is_null() {
        if !at.is_empty() {
            set.push(at.to_owned());
        }
        *node = if is_index(first) {
            Value::Sequence(Vec::new())
        } else {
            Value::Mapping(Mapping::new())
        };
    }
    match node {
        Value::Mapping(map) => {
            let child = map
                .entry(Value::String(first.clone()))
                .or_insert(Value::Null);
            set_path(child, &join(at, first), rest, value, set)
        }
        Value::Sequence(seq) => {
            let shown = as_written(at);
            let idx: usize = first
                .parse()
                .map_err(|_| format!("`{shown}` is a list: `{first}` is not an index in it"))?;
            let len = seq.len();
            if idx == len {
                seq.push(Value::Null);
            }
            match seq.get_mut(idx) {
                Some(child) => set_path(child, &format!("{at}[{idx}]"), rest, value, set),
                None if len == 0 => Err(format!(
                    "index {idx} is past the end of `{shown}`, which has no items yet: start at 0"
                )),
                None => Err(format!(
                    "index {idx} is past the end of `{shown}`, which has {len} item(s): use 0 to {len} ({len} adds one)"
                )),
            }
        }
        _ => Err(format!(
            "`{}` is a single value: it has no `{first}` inside",
            as_written(at)
        )),
    }
}

/// Replace every `name_file: PATH` key by `name: <contents of PATH>` (one
/// trailing newline trimmed), recording it in `origins`. Having both `name`
/// and `name_file` is an error; a file that cannot be read leaves a stand-in.
pub fn resolve_file_secrets(
    root: &mut Value,
    path: &str,
    errors: &mut Vec<ConfigError>,
    origins: &mut Origins,
) {
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
                let here = as_written(&join(path, &key));
                let there = as_written(&join(path, &target));
                let Some(file_value) = map.shift_remove(key.as_str()) else {
                    continue;
                };
                if map.contains_key(target.as_str()) {
                    errors.push(ConfigError::at(
                        &here,
                        &format!("set either `{target}` or `{key}`, not both"),
                    ));
                    continue;
                }
                let text = match file_value.as_str() {
                    None => Err("must be a file path".to_owned()),
                    Some(file) => std::fs::read_to_string(file)
                        .map_err(|e| format!("cannot read `{file}`: {e}")),
                };
                let value = match text {
                    Ok(text) => {
                        origins.read_from_file(&there);
                        let text = text.strip_suffix('\n').unwrap_or(&text);
                        let text = text.strip_suffix('\r').unwrap_or(text);
                        text.to_owned()
                    }
                    Err(message) => {
                        errors.push(ConfigError::at(&here, &message));
                        origins.stand_in(&there);
                        UNREADABLE_SECRET.to_owned()
                    }
                };
                map.insert(Value::String(target), Value::String(value));
            }
            for (k, v) in map.iter_mut() {
                if let Some(k) = k.as_str() {
                    let child = join(path, k);
                    resolve_file_secrets(v, &child, errors, origins);
                }
            }
        }
        Value::Sequence(seq) => {
            for (i, v) in seq.iter_mut().enumerate() {
                resolve_file_secrets(v, &format!("{path}[{i}]"), errors, origins);
            }
        }
        _ => {}
    }
}

/// `rules: [ ... ]` is shorthand for `rules: { rules: [ ... ] }`; the tree
/// holds the long form (error paths are shown as written, see
/// [`as_written`]).
pub fn normalize_rules(root: &mut Value) {
    let Some(map) = root.as_mapping_mut() else {
        return;
    };
    if let Some(rules @ Value::Sequence(_)) = map.get_mut("rules") {
        let list = std::mem::take(rules);
        let mut wrapped = Mapping::new();
        wrapped.insert(Value::String("rules".into()), list);
        *rules = Value::Mapping(wrapped);
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
    #[cfg(test)]
    pub fn line_of(&self, path: &str) -> Option<usize> {
        self.locate(path).map(|(line, _)| line)
    }

    /// The line of whichever spelling of one key path is found deepest
    /// (`rules[0]` may be written `rules: {rules: [...]}`, a secret as its
    /// `_file` key).
    pub fn line_of_any<'p>(&self, spellings: impl IntoIterator<Item = &'p str>) -> Option<usize> {
        spellings
            .into_iter()
            .filter_map(|p| self.locate(p))
            .max_by_key(|(_, depth)| *depth)
            .map(|(line, _)| line)
    }

    /// The line of `path` or its nearest indexed ancestor, and how long a
    /// prefix of `path` that ancestor is.
    fn locate(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some((*l, p.len()));
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

    /// `text` with the overrides `vars` applied: the tree, what set what, the errors.
    fn overridden(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> (Value, Origins, Vec<ConfigError>) {
        let mut v: Value = serde_norway::from_str(text).unwrap();
        normalize_rules(&mut v);
        let mut origins = Origins::default();
        let errs = apply_env_overrides(&mut v, vars, &mut origins);
        (v, origins, errs)
    }

    #[test]
    fn env_overrides_set_typed_values_and_list_items() {
        let (v, origins, errs) = overridden(
            "server:\n  listen: a\nrules:\n- path: /x\n",
            vec![
                ("GATEHOUSE__SERVER__LISTEN".into(), "127.0.0.1:9".into()),
                ("GATEHOUSE__SERVER__THREADS".into(), "3".into()),
                ("GATEHOUSE__RULES__0__POLICY".into(), "public".into()),
                ("GATEHOUSE__RULES__9__POLICY".into(), "public".into()),
                ("GATEHOUSE__RULES__DEFAULT".into(), "deny".into()),
                ("OTHER".into(), "x".into()),
            ],
        );
        assert_eq!(errs.len(), 1, "index past the end is reported: {errs:?}");
        assert_eq!(errs[0].env.as_deref(), Some("GATEHOUSE__RULES__9__POLICY"));
        assert!(
            errs[0].message.contains("past the end of `rules`"),
            "{errs:?}"
        );
        assert_eq!(v["server"]["listen"].as_str(), Some("127.0.0.1:9"));
        assert_eq!(v["server"]["threads"].as_u64(), Some(3));
        assert_eq!(v["rules"]["rules"][0]["policy"].as_str(), Some("public"));
        assert_eq!(v["rules"]["rules"][0]["path"].as_str(), Some("/x"));
        assert_eq!(v["rules"]["default"].as_str(), Some("deny"));
        assert_eq!(
            origins.env_var("server.listen"),
            Some("GATEHOUSE__SERVER__LISTEN")
        );
        assert_eq!(
            origins.env_var("rules[0].policy"),
            Some("GATEHOUSE__RULES__0__POLICY")
        );
        assert_eq!(origins.env_var("rules[0].path"), None, "the file's");
    }

    #[test]
    fn env_overrides_create_the_lists_and_items_the_file_lacks() {
        let (v, origins, errs) = overridden(
            "upstream:\n  url: x\n",
            vec![
                ("GATEHOUSE__RULES__10__POLICY".into(), "public".into()),
                ("GATEHOUSE__RULES__0__POLICY".into(), "deny".into()),
                ("GATEHOUSE__USERS__0__USERNAME".into(), "ann".into()),
                ("GATEHOUSE__USERS__0__NAME".into(), "Ann".into()),
                ("GATEHOUSE__USERS__2__NAME".into(), "Bob".into()),
            ]
            .into_iter()
            .chain((1..10).map(|i| (format!("GATEHOUSE__RULES__{i}__POLICY"), "public".into()))),
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].env.as_deref(), Some("GATEHOUSE__USERS__2__NAME"));
        assert!(errs[0].message.contains("use 0 to 1"), "{errs:?}");
        assert_eq!(v["rules"]["rules"][0]["policy"].as_str(), Some("deny"));
        assert_eq!(v["rules"]["rules"][10]["policy"].as_str(), Some("public"));
        assert_eq!(v["users"][0]["username"].as_str(), Some("ann"));
        assert_eq!(v["users"][0]["name"].as_str(), Some("Ann"));
        assert_eq!(
            origins.env_var("users[0].email"),
            Some("GATEHOUSE__USERS__0__NAME"),
            "the item was created by a variable"
        );
    }

    #[test]
    fn variables_are_applied_in_index_order() {
        assert_eq!(
            by_segments("GATEHOUSE__RULES__2__X", "GATEHOUSE__RULES__10__X"),
            Ordering::Less
        );
        assert_eq!(
            by_segments("GATEHOUSE__RULES__A", "GATEHOUSE__RULES__B"),
            Ordering::Less
        );
        assert_eq!(
            by_segments("GATEHOUSE__RULES", "GATEHOUSE__RULES__0"),
            Ordering::Less
        );
    }
}
