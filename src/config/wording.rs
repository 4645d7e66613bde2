//! Saying what is wrong in the user's words rather than Rust's.
//!
//! serde's schema errors (`invalid type: string "abc", expected u32`) become
//! "expected a whole number, found text `abc`"; an unknown key gets the
//! nearest known key ("did you mean `upstream`?"); YAML syntax errors say
//! what to change (a tab used for indentation, a key written twice).

use super::ConfigError;
use serde_norway::Value;

/// One schema error, as serde reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaError {
    /// A key its section does not have; `known` are the keys it does have.
    UnknownKey { key: String, known: Vec<String> },
    /// A required key is absent.
    MissingKey { key: String },
    /// A value of the wrong kind; `expected` in serde's words (`u16`, `a string`).
    WrongValue { expected: String },
    /// Anything else, in serde's words.
    Other(String),
}

impl SchemaError {
    /// Read serde's message (the wording of `serde::de::Error`'s defaults).
    pub fn parse(message: &str) -> SchemaError {
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some((key, known)) = rest.split_once('`') {
                return SchemaError::UnknownKey {
                    key: key.to_owned(),
                    known: quoted_names(known),
                };
            }
        }
        if let Some(key) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            return SchemaError::MissingKey {
                key: key.to_owned(),
            };
        }
        if ["invalid type: ", "invalid value: ", "invalid length "]
            .iter()
            .any(|p| message.starts_with(p))
        {
            if let Some(at) = message.rfind(", expected ") {
                return SchemaError::WrongValue {
                    expected: message[at + ", expected ".len()..].to_owned(),
                };
            }
        }
        if message.starts_with("data did not match any variant of untagged enum") {
            // `OneOrMany`, the schema's only untagged enum.
            return SchemaError::WrongValue {
                expected: "text or a list of text".to_owned(),
            };
        }
        SchemaError::Other(message.to_owned())
    }
}

/// The names between backticks: serde's list of the keys it expected.
fn quoted_names(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The known key nearest to `key`, when one is close enough to be a typo.
pub fn nearest<'k>(key: &str, known: &'k [String]) -> Option<&'k str> {
    let plain = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let key = plain(key);
    let limit = (key.chars().count() / 3).clamp(1, 3);
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(&key, &plain(k)), k))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, k)| k.as_str())
}

/// "unknown key `lisen`; did you mean `listen`?", or the keys there are.
pub fn unknown_key(key: &str, suggestion: Option<&str>, known: &[String]) -> String {
    match suggestion {
        Some(s) => format!("unknown key `{key}`; did you mean `{s}`?"),
        None if known.is_empty() => format!("unknown key `{key}`; nothing goes here"),
        None if known.len() <= 8 => format!(
            "unknown key `{key}`; the keys here are {}",
            known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => format!("unknown key `{key}`"),
    }
}

/// What a key wants, in the user's words; `key` is the key's own name.
fn wanted(expected: &str, key: &str) -> String {
    let words = match expected {
        "u16" if key == "port" => "a port number from 1 to 65535",
        "u8" => "a number from 0 to 255",
        "u16" => "a number from 0 to 65535",
        "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "a borrowed string" | "a char" => "text",
        "a sequence" => "a list",
        _ if key == "rules" && expected.starts_with("struct ") => {
            "a list of rules (or `default:` and `rules:`)"
        }
        "a map" => "a mapping of keys (`key: value`)",
        _ if expected.starts_with("struct ") => "a mapping of keys (`key: value`)",
        other => other,
    };
    words.to_owned()
}

fn is_number(expected: &str) -> bool {
    expected.starts_with(['u', 'i', 'f']) && expected[1..].bytes().all(|b| b.is_ascii_digit())
        || expected == "usize"
        || expected == "isize"
}

/// What was found, in the user's words: "text `abc`", "the number 5".
fn found(value: &Value) -> String {
    match value {
        Value::Null => "nothing (the value is empty)".to_owned(),
        Value::Bool(b) => format!("`{b}`"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) if s.chars().count() > 60 => {
            format!("text `{}…`", s.chars().take(60).collect::<String>())
        }
        Value::String(s) => format!("text `{s}`"),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping of keys".to_owned(),
        Value::Tagged(t) => format!("a value tagged `{}`", t.tag),
    }
}

/// "expected a whole number, 0 or more, found text `abc`", with a hint
/// when quotes make the difference.
pub fn wrong_value(expected: &str, key: &str, value: Option<&Value>) -> String {
    let want = wanted(expected, key);
    let Some(value) = value else {
        return format!("expected {want}");
    };
    let hint = match value {
        Value::Number(_) | Value::Bool(_) if want == "text" => "; put it in quotes",
        Value::String(s) if is_number(expected) && s.trim().parse::<f64>().is_ok() => {
            "; write it without quotes"
        }
        Value::String(s) if expected == "a boolean" && matches!(s.as_str(), "true" | "false") => {
            "; write it without quotes"
        }
        _ => "",
    };
    format!("expected {want}, found {}{hint}", found(value))
}

/// A YAML syntax error, with the line to change.
pub fn yaml_error(text: &str, e: &serde_norway::Error) -> ConfigError {
    let line = e.location().map(|l| l.line());
    let lines: Vec<&str> = text.lines().collect();
    let tab = line
        .filter(|&l| {
            lines
                .get(l.wrapping_sub(1))
                .is_some_and(|t| tab_indented(t))
        })
        .or_else(|| {
            let upto = line.unwrap_or(lines.len()).min(lines.len());
            lines[..upto]
                .iter()
                .position(|t| tab_indented(t))
                .map(|i| i + 1)
        });
    let message = e.to_string();
    let (line, message) = if tab.is_some() {
        (
            tab,
            "tabs are not allowed for indentation; use spaces".to_owned(),
        )
    } else if let Some(key) = message
        .strip_prefix("duplicate entry with key ")
        .map(|k| k.trim_matches('"'))
    {
        (
            second_occurrence(&lines, key, line.unwrap_or(1)).or(line),
            format!("`{key}` is written twice in the same mapping; keep one"),
        )
    } else {
        (
            line,
            format!("not valid YAML: {}", without_location(&message)),
        )
    };
    ConfigError {
        path: String::new(),
        env: None,
        line,
        message,
    }
}

/// Whether the indentation of a line (before its text, `- ` included) has a tab.
fn tab_indented(line: &str) -> bool {
    line.chars()
        .take_while(|c| matches!(c, ' ' | '\t' | '-'))
        .any(|c| c == '\t')
}

/// The line of the second `key:` at the indentation of the first one from
/// line `from` on.
fn second_occurrence(lines: &[&str], key: &str, from: usize) -> Option<usize> {
    let mut first_indent = None;
    for (i, line) in lines.iter().enumerate().skip(from.saturating_sub(1)) {
        let rest = line.trim_start_matches([' ', '-']);
        let indent = line.len() - rest.len();
        let is_key = rest
            .strip_prefix(key)
            .or_else(|| rest.strip_prefix(&format!("\"{key}\"")))
            .is_some_and(|after| after.starts_with(':'));
        if !is_key {
            continue;
        }
        match first_indent {
            None => first_indent = Some(indent),
            Some(first) if first == indent => return Some(i + 1),
            Some(_) => {}
        }
    }
    None
}

/// serde_norway's message without its ` at line L column C` (the line is shown apart).
fn without_location(message: &str) -> String {
    let Some(start) = message.find(" at line ") else {
        return message.to_owned();
    };
    let rest = &message[start + " at line ".len()..];
    let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
    let after_line = &rest[digits(rest)..];
    let end = match after_line.strip_prefix(" column ") {
        Some(c) => &c[digits(c)..],
        None => after_line,
    };
    format!("{}{end}", &message[..start])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_are_read_into_their_kind() {
        assert_eq!(
            SchemaError::parse("unknown field `lisen`, expected one of `listen`, `threads`"),
            SchemaError::UnknownKey {
                key: "lisen".into(),
                known: vec!["listen".into(), "threads".into()]
            }
        );
        assert_eq!(
            SchemaError::parse("unknown field `x`, expected `default` or `rules`"),
            SchemaError::UnknownKey {
                key: "x".into(),
                known: vec!["default".into(), "rules".into()]
            }
        );
        assert_eq!(
            SchemaError::parse("missing field `username`"),
            SchemaError::MissingKey {
                key: "username".into()
            }
        );
        assert_eq!(
            SchemaError::parse("invalid type: string \"a, expected b\", expected u16"),
            SchemaError::WrongValue {
                expected: "u16".into()
            }
        );
        assert_eq!(
            SchemaError::parse("something else"),
            SchemaError::Other("something else".into())
        );
    }

    #[test]
    fn typos_get_the_nearest_key_and_others_none() {
        let known: Vec<String> = [
            "server",
            "upstream",
            "session",
            "public_url",
            "trusted_proxies",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(nearest("upstrem", &known), Some("upstream"));
        assert_eq!(nearest("sesion", &known), Some("session"));
        assert_eq!(nearest("publicUrl", &known), Some("public_url"));
        assert_eq!(nearest("public-url", &known), Some("public_url"));
        assert_eq!(nearest("trusted_proxy", &known), Some("trusted_proxies"));
        assert_eq!(nearest("database", &known), None);
        assert_eq!(nearest("x", &known), None);
    }

    #[test]
    fn types_are_named_in_the_users_words() {
        let text = Value::String("abc".into());
        assert_eq!(
            wrong_value("u32", "max_retries", Some(&text)),
            "expected a whole number, 0 or more, found text `abc`"
        );
        assert_eq!(
            wrong_value("u16", "port", Some(&Value::String("587".into()))),
            "expected a port number from 1 to 65535, found text `587`; write it without quotes"
        );
        assert_eq!(
            wrong_value("a string", "ttl", Some(&Value::Number(300.into()))),
            "expected text, found the number 300; put it in quotes"
        );
        assert_eq!(
            wrong_value("a boolean", "secure", Some(&Value::String("yes".into()))),
            "expected true or false, found text `yes`"
        );
        assert_eq!(
            wrong_value("a sequence", "users", Some(&text)),
            "expected a list, found text `abc`"
        );
        assert_eq!(
            wrong_value("struct RawServer", "server", Some(&text)),
            "expected a mapping of keys (`key: value`), found text `abc`"
        );
    }

    #[test]
    fn yaml_errors_say_what_to_change() {
        let tab = "upstream:\n\turl: \"echo:\"\n";
        let e = serde_norway::from_str::<Value>(tab).unwrap_err();
        let e = yaml_error(tab, &e);
        assert_eq!(e.line, Some(2));
        assert_eq!(
            e.message,
            "tabs are not allowed for indentation; use spaces"
        );
        let twice = "upstream:\n  url: a\nserver: {}\nupstream:\n  url: b\n";
        let e = serde_norway::from_str::<Value>(twice).unwrap_err();
        let e = yaml_error(twice, &e);
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.message.contains("`upstream` is written twice"), "{e}");
        let open = "upstream: [\n";
        let e = serde_norway::from_str::<Value>(open).unwrap_err();
        let e = yaml_error(open, &e);
        assert!(e.message.starts_with("not valid YAML: "), "{e}");
        assert!(!e.message.contains(" at line "), "{e}");
    }
}
