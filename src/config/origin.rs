//! Where the values of the tree came from, when not from the file's own
//! text, and which values stand in for wrong ones.
//!
//! An error on a value set by an environment override names the variable
//! instead of a line; a value read from a `*_file` secret is located at its
//! `_file` key. A stand-in (a wrong value removed, emptied or replaced so
//! checking can go on) has had its error reported already: checks of it, of
//! what it contains or of what it belongs to would only repeat that error.
//!
//! Paths are written as users see them: `server.listen`, `rules[0].policy`.

/// The provenance of the values of one configuration.
#[derive(Debug, Default)]
pub struct Origins {
    env: Vec<EnvValue>,
    files: Vec<String>,
    stand_ins: Vec<String>,
}

/// A key path set by an environment variable.
#[derive(Debug)]
struct EnvValue {
    path: String,
    var: String,
    /// The variable's text, before it was read as YAML.
    text: String,
}

impl Origins {
    /// `path` was set (or created) by the variable `var`, whose text is `text`.
    pub fn set_by_env(&mut self, path: &str, var: &str, text: &str) {
        self.env.push(EnvValue {
            path: path.to_owned(),
            var: var.to_owned(),
            text: text.to_owned(),
        });
    }

    /// `path` holds the contents of the file its `_file` key named.
    pub fn read_from_file(&mut self, path: &str) {
        self.files.push(path.to_owned());
    }

    /// `path` holds a stand-in for a wrong value whose error is reported.
    pub fn stand_in(&mut self, path: &str) {
        self.stand_ins.push(path.to_owned());
    }

    /// Whether `path` is a stand-in or lies within one.
    pub fn within_stand_in(&self, path: &str) -> bool {
        self.stand_ins.iter().any(|s| within(path, s))
    }

    /// Whether an error at `path` repeats one about a stand-in: `path` is a
    /// stand-in, lies within one, or holds one (the top level excepted).
    pub fn repeats_stand_in(&self, path: &str) -> bool {
        self.stand_ins
            .iter()
            .any(|s| within(path, s) || (!path.is_empty() && within(s, path)))
    }

    /// The variable that set `path` or the nearest section holding it.
    pub fn env_var(&self, path: &str) -> Option<&str> {
        self.env
            .iter()
            .filter(|e| within(path, &e.path))
            .max_by_key(|e| e.path.len())
            .map(|e| e.var.as_str())
    }

    /// The text of the variable that set exactly `path`.
    pub fn env_text(&self, path: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|e| e.path == path)
            .map(|e| e.text.as_str())
    }

    /// `path` as written in the file when it (or a section holding it) was
    /// read from a `*_file` secret: `users[0].password_hash_file`.
    pub fn file_key(&self, path: &str) -> Option<String> {
        let file = self.files.iter().find(|f| within(path, f))?;
        Some(format!("{file}_file{}", &path[file.len()..]))
    }
}

/// Whether `path` is `outer` or lies within it (`a.b[0]` within `a.b`).
pub fn within(path: &str, outer: &str) -> bool {
    outer.is_empty()
        || path
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// The key path of a node of the tree as the user wrote it: the shorthand
/// `rules: [...]` is held as `rules: {rules: [...]}`, so `rules.rules[2]` is
/// `rules[2]`.
pub fn as_written(tree_path: &str) -> String {
    match tree_path.strip_prefix("rules.rules") {
        Some(rest) if rest.is_empty() || rest.starts_with(['.', '[']) => format!("rules{rest}"),
        _ => tree_path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_lie_within_their_sections_only() {
        assert!(within("server.listen", "server"));
        assert!(within("rules[0].policy", "rules"));
        assert!(within("rules[0]", "rules[0]"));
        assert!(!within("server_x", "server"));
        assert!(!within("rules[10]", "rules[1]"));
        assert_eq!(as_written("rules.rules[2].path"), "rules[2].path");
        assert_eq!(as_written("rules.rules"), "rules");
        assert_eq!(as_written("rules.default"), "rules.default");
        assert_eq!(as_written("rules.rulesx"), "rules.rulesx");
    }

    #[test]
    fn errors_name_the_variable_and_skip_repeats_of_stand_ins() {
        let mut o = Origins::default();
        o.set_by_env("rules[0]", "GATEHOUSE__RULES__0__PATH", "/a");
        o.set_by_env("rules[0].policy", "GATEHOUSE__RULES__0__POLICY", "deny");
        o.read_from_file("users[0].password_hash");
        o.stand_in("tokens.keys[0].private_key");
        assert_eq!(
            o.env_var("rules[0].policy"),
            Some("GATEHOUSE__RULES__0__POLICY")
        );
        assert_eq!(
            o.env_var("rules[0].path"),
            Some("GATEHOUSE__RULES__0__PATH")
        );
        assert_eq!(o.env_var("rules[1]"), None);
        assert_eq!(o.env_text("rules[0].policy"), Some("deny"));
        assert_eq!(
            o.file_key("users[0].password_hash").as_deref(),
            Some("users[0].password_hash_file")
        );
        assert!(o.repeats_stand_in("tokens.keys[0]"));
        assert!(o.repeats_stand_in("tokens.keys"));
        assert!(!o.repeats_stand_in(""));
        assert!(!o.repeats_stand_in("tokens.keys[1]"));
    }
}
