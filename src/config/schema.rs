//! Reading the YAML tree into the raw schema, collecting every schema error
//! instead of serde's first.
//!
//! serde stops at the first unknown key or wrong value. Here each error is
//! recorded with its key path, the node at fault is made harmless in the
//! tree, and the tree is read again, at most [`MAX_ROUNDS`] times: an unknown
//! key is renamed to the key it was surely meant as (or removed), a wrong
//! value is emptied or removed, a missing required key is filled in. What was
//! made harmless is a stand-in (see `origin`), so neither this reading nor the
//! checks after it report it again.

use super::origin::{as_written, Origins};
use super::raw::RawConfig;
use super::wording::{self, SchemaError};
use super::ConfigError;
use serde_norway::{Mapping, Value};

/// How many errors one reading collects before it gives up.
const MAX_ROUNDS: usize = 64;

/// One step of a key path through the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// Read the tree into the schema. Answers the schema's value, or none when
/// the errors are too many to go on, and every error found.
pub fn read(root: Value, origins: &mut Origins) -> (Option<RawConfig>, Vec<ConfigError>) {
    let mut reading = Reading {
        root,
        origins,
        errors: Vec::new(),
        emptied: Vec::new(),
        filled: Vec::new(),
        coerced: Vec::new(),
    };
    for _ in 0..MAX_ROUNDS {
        match serde_path_to_error::deserialize::<_, RawConfig>(reading.root.clone()) {
            Ok(raw) => return (Some(raw), reading.errors),
            Err(e) => {
                let (path, complete) = steps(e.path());
                let message = e.into_inner().to_string();
                let repaired = match complete {
                    true => reading.repair(path, &message),
                    // serde cannot name a key that is not text.
                    false => reading.key_not_text(path, &message),
                };
                if !repaired {
                    return (None, reading.errors);
                }
            }
        }
    }
    reading.errors.push(ConfigError::at(
        "",
        "too many errors to look further; fix these first",
    ));
    (None, reading.errors)
}

struct Reading<'o> {
    root: Value,
    origins: &'o mut Origins,
    errors: Vec<ConfigError>,
    /// Wrong values already emptied or removed once.
    emptied: Vec<Vec<Step>>,
    /// Missing keys already filled in once.
    filled: Vec<Vec<Step>>,
    /// Environment values already read as text.
    coerced: Vec<String>,
}

impl Reading<'_> {
    /// Record the error (unless it repeats one about a stand-in) and make its
    /// node harmless. False: nothing more can be done.
    fn repair(&mut self, path: Vec<Step>, message: &str) -> bool {
        match SchemaError::parse(message) {
            SchemaError::UnknownKey { key, known } => self.unknown_key(path, &key, &known),
            SchemaError::MissingKey { key } => {
                let mut at = path.clone();
                at.push(Step::Key(key.clone()));
                self.report(&at, "is required");
                if self.filled.contains(&at) {
                    return self.remove(&path);
                }
                self.origins.stand_in(&written(&at));
                self.filled.push(at);
                match node_mut(&mut self.root, &path) {
                    Some(Value::Mapping(map)) => {
                        map.insert(Value::String(key), Value::String(String::new()));
                        true
                    }
                    _ => self.remove(&path),
                }
            }
            SchemaError::WrongValue { expected } => self.wrong_value(path, &expected),
            SchemaError::Other(message) => {
                self.report(&path, &message);
                self.remove(&path)
            }
        }
    }

    /// A key of the mapping at `path` that is a number, `true` or the like.
    fn key_not_text(&mut self, path: Vec<Step>, message: &str) -> bool {
        let Some(Value::Mapping(map)) = node_mut(&mut self.root, &path) else {
            return self.remove(&path);
        };
        let Some(key) = map.keys().find(|k| !k.is_string()).cloned() else {
            return self.remove(&path);
        };
        map.shift_remove(&key);
        let text = match &key {
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_owned(),
            _ => "…".to_owned(),
        };
        let mut at = path;
        at.push(Step::Key(text.clone()));
        let message = if message.contains("expected field identifier") {
            format!("unknown key `{text}`")
        } else {
            format!("the key `{text}` must be text; put it in quotes")
        };
        self.report(&at, &message);
        self.origins.stand_in(&written(&at));
        true
    }

    fn unknown_key(&mut self, path: Vec<Step>, key: &str, known: &[String]) -> bool {
        let (parent, at) = match path.split_last() {
            Some((Step::Key(last), parent)) if last == key => (parent.to_vec(), path.clone()),
            _ => {
                let mut at = path.clone();
                at.push(Step::Key(key.to_owned()));
                (path, at)
            }
        };
        let suggestion = wording::nearest(key, known).map(str::to_owned);
        let written_at = written(&at);
        // `name_file: PATH` was read into `name`: speak of what was written.
        let (shown, message) = match self.origins.file_key(&written_at) {
            Some(file_key) => (
                file_key,
                wording::unknown_key(
                    &format!("{key}_file"),
                    suggestion.as_ref().map(|s| format!("{s}_file")).as_deref(),
                    &[],
                ),
            ),
            None => (
                written_at.clone(),
                wording::unknown_key(key, suggestion.as_deref(), known),
            ),
        };
        if !self.origins.within_stand_in(&written_at) {
            self.errors.push(ConfigError::at(&shown, &message));
        }
        let Some(Value::Mapping(map)) = node_mut(&mut self.root, &parent) else {
            return self.remove(&parent);
        };
        let Some(found) = find_key(map, key) else {
            return false;
        };
        match suggestion.filter(|s| !map.contains_key(s.as_str())) {
            // Go on as if the key were spelt right, so what depends on it
            // (a missing required key, a role a user names) is not reported too.
            Some(meant) => {
                let renamed = std::mem::take(map)
                    .into_iter()
                    .map(|(k, v)| match k == found {
                        true => (Value::String(meant.clone()), v),
                        false => (k, v),
                    })
                    .collect();
                *map = renamed;
                let mut meant_at = parent;
                meant_at.push(Step::Key(meant));
                self.origins.stand_in(&written(&meant_at));
            }
            None => {
                map.shift_remove(&found);
            }
        }
        true
    }

    fn wrong_value(&mut self, path: Vec<Step>, expected: &str) -> bool {
        let at = written(&path);
        // The environment's text was read as YAML to keep numbers and lists;
        // where text is wanted, it is the text as given.
        if expected == "a string" && !self.coerced.contains(&at) {
            if let Some(text) = self.origins.env_text(&at).map(str::to_owned) {
                if let Some(node) = node_mut(&mut self.root, &path) {
                    *node = Value::String(text);
                    self.coerced.push(at);
                    return true;
                }
            }
        }
        let key = path
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::Key(k) => Some(k.as_str()),
                Step::Index(_) => None,
            })
            .unwrap_or_default();
        let message = wording::wrong_value(expected, key, node(&self.root, &path));
        self.report(&path, &message);
        if self.emptied.contains(&path) {
            return self.remove(&path);
        }
        self.emptied.push(path.clone());
        self.origins.stand_in(&at);
        let empty = if expected == "a sequence" {
            Some(Value::Sequence(Vec::new()))
        } else if expected == "a map" || expected.starts_with("struct ") {
            Some(Value::Mapping(Mapping::new()))
        } else {
            None
        };
        match (empty, path.split_last()) {
            (Some(empty), _) => match node_mut(&mut self.root, &path) {
                Some(node) => {
                    *node = empty;
                    true
                }
                None => false,
            },
            // An item of a list of text: emptied, so later items keep their place.
            (None, Some((Step::Index(_), _))) => match node_mut(&mut self.root, &path) {
                Some(node) => {
                    *node = Value::String(String::new());
                    true
                }
                None => false,
            },
            (None, _) => self.remove(&path),
        }
    }

    /// Record an error at `path` unless it lies within a stand-in.
    fn report(&mut self, path: &[Step], message: &str) {
        let at = written(path);
        if !self.origins.within_stand_in(&at) {
            self.errors.push(ConfigError::at(&at, message));
        }
    }

    /// Take the node at `path` out of the tree: a key from its mapping, an
    /// item with its whole list. False at the top level.
    fn remove(&mut self, path: &[Step]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        self.origins.stand_in(&written(path));
        match (node_mut(&mut self.root, parent), last) {
            (Some(Value::Mapping(map)), Step::Key(key)) => {
                if let Some(found) = find_key(map, key) {
                    map.shift_remove(&found);
                }
                true
            }
            _ => self.remove(parent),
        }
    }
}

/// The key of `map` serde called `key` (keys that are numbers or booleans in
/// YAML reach serde as their text).
fn find_key(map: &Mapping, key: &str) -> Option<Value> {
    map.keys()
        .find(|k| match k {
            Value::String(s) => s == key,
            Value::Number(n) => n.to_string() == key,
            Value::Bool(b) => b.to_string() == key,
            _ => false,
        })
        .cloned()
}

/// serde's path as steps, and whether it is whole (a key that is not text
/// ends it).
fn steps(path: &serde_path_to_error::Path) -> (Vec<Step>, bool) {
    use serde_path_to_error::Segment;
    let mut out = Vec::new();
    for segment in path.iter() {
        out.push(match segment {
            Segment::Seq { index } => Step::Index(*index),
            Segment::Map { key } => Step::Key(key.clone()),
            Segment::Enum { variant } => Step::Key(variant.clone()),
            Segment::Unknown => return (out, false),
        });
    }
    (out, true)
}

/// The path as the user wrote it: `rules[0].policy`.
fn written(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Key(k) if out.is_empty() => out.push_str(k),
            Step::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    as_written(&out)
}

fn node<'v>(root: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(root, |node, step| match (node, step) {
        (Value::Mapping(map), Step::Key(k)) => find_key(map, k).and_then(|k| map.get(&k)),
        (Value::Sequence(seq), Step::Index(i)) => seq.get(*i),
        _ => None,
    })
}

fn node_mut<'v>(root: &'v mut Value, path: &[Step]) -> Option<&'v mut Value> {
    path.iter().try_fold(root, |node, step| match (node, step) {
        (Value::Mapping(map), Step::Key(k)) => {
            let found = find_key(map, k)?;
            map.get_mut(&found)
        }
        (Value::Sequence(seq), Step::Index(i)) => seq.get_mut(*i),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> (bool, Vec<String>, Origins) {
        let mut origins = Origins::default();
        let mut root: Value = serde_norway::from_str(text).unwrap();
        super::super::source::normalize_rules(&mut root);
        let (raw, errors) = read(root, &mut origins);
        (
            raw.is_some(),
            errors.iter().map(ToString::to_string).collect(),
            origins,
        )
    }

    #[test]
    fn every_schema_error_is_found_in_one_reading() {
        let (read, errors, _) = errors_of(
            "upstrem:\n  url: x\nserver:\n  lisen: a\n  threads: many\nsmtp:\n  port: \"587\"\nusers:\n  - name: x\n  - username: [a]\n    role: 5\nroles:\n  editor: [\"a:b\", [x]]\nrules:\n  - path: 5\n    policy: public\n",
        );
        assert!(read, "the reading goes on to the checks");
        assert_eq!(
            errors,
            [
                "upstrem: unknown key `upstrem`; did you mean `upstream`?",
                "server.lisen: unknown key `lisen`; did you mean `listen`?",
                "server.threads: expected a whole number, 0 or more, found text `many`",
                "smtp.port: expected a port number from 1 to 65535, found text `587`; write it without quotes",
                "users[0].username: is required",
                "users[1].username: expected text, found a list",
                "users[1].role: expected text, found the number 5; put it in quotes",
                "roles.editor[1]: expected text, found a list",
                "rules[0].path: expected text or a list of text, found the number 5",
            ]
        );
    }

    #[test]
    fn keys_that_are_not_text_are_named() {
        let (read, errors, _) = errors_of("5: x\nroles:\n  7: [a]\n  ed: [b]\nserver: {true: 1}\n");
        assert!(read);
        assert_eq!(
            errors,
            [
                "5: unknown key `5`",
                "roles.7: the key `7` must be text; put it in quotes",
                "server.true: unknown key `true`",
            ]
        );
    }

    #[test]
    fn stand_ins_are_not_reported_twice() {
        // The renamed key's own wrong value is not a second error; the
        // emptied struct's missing keys are not either.
        let (read, errors, origins) =
            errors_of("server:\n  lisen: [a]\n  tls: 5\ntokens:\n  keys: [{}]\n");
        assert!(read);
        assert_eq!(
            errors,
            [
                "server.lisen: unknown key `lisen`; did you mean `listen`?",
                "server.tls: expected a mapping of keys (`key: value`), found the number 5",
                "tokens.keys[0].kid: is required",
            ]
        );
        assert!(origins.within_stand_in("server.listen"));
        assert!(origins.within_stand_in("server.tls.cert_path"));
    }
}
