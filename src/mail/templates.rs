//! The mail templates: three files per mail (`NAME.subject.txt`, `NAME.txt`,
//! `NAME.html`), built in from `templates/mail/`, each overridable by a file
//! of the same name in `smtp.templates_dir`. minijinja, with HTML escaping in
//! the `.html` files only, and `title` (`portal.title`) in every template.
//!
//! Overrides are checked when the configuration is: each is rendered with a
//! sample of its context, so a typo in a variable name fails `check-config`
//! instead of a password reset.

use super::{Mail, MailError};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// Every mail Gatehouse sends, with the variables its templates get (besides
/// `title`).
pub const TEMPLATES: &[&str] = &[
    "test",
    "password_reset",
    "password_changed",
    "activation",
    "invitation",
    "registration_exists",
];

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(
            (concat!($name, ".subject.txt"), include_str!(concat!("../../templates/mail/", $name, ".subject.txt"))),
            (concat!($name, ".txt"), include_str!(concat!("../../templates/mail/", $name, ".txt"))),
            (concat!($name, ".html"), include_str!(concat!("../../templates/mail/", $name, ".html"))),
        )*]
    };
}

/// File name → built-in source.
const BUILTIN: &[(&str, &str)] = builtin!(
    "test",
    "password_reset",
    "password_changed",
    "activation",
    "invitation",
    "registration_exists",
);

/// A context with every variable `name` documents, for checking templates.
fn sample_context(name: &str) -> serde_json::Value {
    let link = "https://app.example.com/_auth/x?token=sample";
    match name {
        "password_reset" => {
            serde_json::json!({"link": link, "username": "alice", "ttl_minutes": 60})
        }
        "password_changed" => serde_json::json!({"username": "alice"}),
        "activation" => serde_json::json!({"link": link, "username": "alice", "ttl_hours": 24}),
        "invitation" => serde_json::json!({"link": link, "role": "editor", "ttl_days": 7}),
        "registration_exists" => {
            serde_json::json!({"username": "alice", "reset_link": link})
        }
        _ => serde_json::json!({}),
    }
}

/// The compiled templates; cheap to clone.
#[derive(Clone)]
pub struct MailTemplates {
    env: Arc<Environment<'static>>,
    /// The files taken from `templates_dir`.
    overridden: Vec<String>,
}

impl fmt::Debug for MailTemplates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MailTemplates")
            .field("overridden", &self.overridden)
            .finish()
    }
}

fn template_error(file: &str, e: impl fmt::Display) -> MailError {
    MailError::Template {
        file: file.to_owned(),
        message: e.to_string(),
    }
}

impl MailTemplates {
    /// The built-in templates, with overrides from `dir` when given, every
    /// one rendered once with a sample context to prove it works. Unknown
    /// `.txt`/`.html` files in `dir` are refused (a misspelt override would
    /// otherwise be silently ignored).
    pub fn load(dir: Option<&Path>, title: &str) -> Result<MailTemplates, MailError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(true);
        env.add_global("title", title.to_owned());
        let mut overridden = Vec::new();
        if let Some(dir) = dir {
            let known: BTreeSet<&str> = BUILTIN.iter().map(|(f, _)| *f).collect();
            let entries = std::fs::read_dir(dir)
                .map_err(|e| template_error(&dir.display().to_string(), e))?;
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|e| template_error(&dir.display().to_string(), e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !(name.ends_with(".txt") || name.ends_with(".html")) {
                    continue;
                }
                if !known.contains(name.as_str()) {
                    return Err(template_error(
                        &entry.path().display().to_string(),
                        format!(
                            "not a mail template (each mail is NAME.subject.txt, NAME.txt and NAME.html, NAME one of: {})",
                            TEMPLATES.join(", ")
                        ),
                    ));
                }
                names.push(name);
            }
            names.sort();
            for name in names {
                let path = dir.join(&name);
                let source = std::fs::read_to_string(&path)
                    .map_err(|e| template_error(&path.display().to_string(), e))?;
                env.add_template_owned(name.clone(), source)
                    .map_err(|e| template_error(&path.display().to_string(), e))?;
                overridden.push(name);
            }
        }
        for (file, source) in BUILTIN {
            if !overridden.iter().any(|o| o == file) {
                env.add_template(file, source)
                    .map_err(|e| template_error(file, e))?;
            }
        }
        let templates = MailTemplates {
            env: Arc::new(env),
            overridden,
        };
        for name in TEMPLATES {
            let sample = sample_context(name);
            templates.render(name, &sample).map_err(|e| match e {
                MailError::Template { file, message } => {
                    let mut known: Vec<&str> = vec!["title"];
                    if let Some(vars) = sample.as_object() {
                        known.extend(vars.keys().map(String::as_str));
                    }
                    MailError::Template {
                        file,
                        message: format!("{message} (this mail's variables: {})", known.join(", ")),
                    }
                }
                e => e,
            })?;
        }
        Ok(templates)
    }

    /// The files taken from `templates_dir`.
    pub fn overridden(&self) -> &[String] {
        &self.overridden
    }

    /// Render the mail `name` (one of [`TEMPLATES`]) with `context`. The
    /// subject is made one line; a variable the template uses and the
    /// context lacks is an error.
    pub fn render<S: Serialize + ?Sized>(
        &self,
        name: &str,
        context: &S,
    ) -> Result<Mail, MailError> {
        if !TEMPLATES.contains(&name) {
            return Err(MailError::UnknownTemplate(name.to_owned()));
        }
        let ctx = minijinja::Value::from_serialize(context);
        let part = |suffix: &str| {
            let file = format!("{name}.{suffix}");
            self.env
                .get_template(&file)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| template_error(&file, e))
        };
        let subject = part("subject.txt")?;
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = part("txt")?;
        let html = part("html")?;
        Ok(Mail {
            subject,
            text,
            html: Some(html),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_mail_renders_with_its_context() {
        let t = MailTemplates::load(None, "Acme").unwrap();
        for name in TEMPLATES {
            let m = t.render(name, &sample_context(name)).unwrap();
            assert!(m.subject.contains("Acme"), "{name}: {}", m.subject);
            assert!(!m.subject.contains('\n'));
            assert!(
                m.text.contains("Acme") && m.html.as_deref().is_some_and(|h| h.contains("Acme"))
            );
        }
        let reset = t
            .render("password_reset", &sample_context("password_reset"))
            .unwrap();
        assert!(reset
            .text
            .contains("https://app.example.com/_auth/x?token=sample"));
        assert!(reset.text.contains("60 minutes"));
        assert_eq!(reset.subject, "Reset your Acme password");
    }

    #[test]
    fn html_is_escaped_and_text_is_not() {
        let t = MailTemplates::load(None, "A & B").unwrap();
        let m = t
            .render(
                "password_changed",
                &serde_json::json!({"username": "<bob>"}),
            )
            .unwrap();
        assert!(m.text.contains("Hello <bob>,"), "{}", m.text);
        assert!(m.subject.contains("A & B"));
        let html = m.html.unwrap();
        assert!(
            html.contains("&lt;bob&gt;") && html.contains("A &amp; B"),
            "{html}"
        );
    }

    #[test]
    fn a_missing_variable_or_an_unknown_mail_is_an_error() {
        let t = MailTemplates::load(None, "Acme").unwrap();
        assert!(matches!(
            t.render("password_reset", &serde_json::json!({"username": "a"})),
            Err(MailError::Template { .. })
        ));
        assert!(matches!(
            t.render("nope", &serde_json::json!({})),
            Err(MailError::UnknownTemplate(_))
        ));
    }

    #[test]
    fn files_in_the_directory_override_one_part_each() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("test.subject.txt"), "Hi from {{ title }}\n").unwrap();
        std::fs::write(dir.path().join("README.md"), "ignored").unwrap();
        let t = MailTemplates::load(Some(dir.path()), "Acme").unwrap();
        let m = t.render("test", &serde_json::json!({})).unwrap();
        assert_eq!(m.subject, "Hi from Acme");
        assert!(
            m.text.contains("test mail from Acme"),
            "the built-in text stays"
        );
        assert_eq!(t.overridden(), ["test.subject.txt"]);

        std::fs::write(dir.path().join("activation.txt"), "{{ lnk }}").unwrap();
        let e = MailTemplates::load(Some(dir.path()), "Acme").unwrap_err();
        assert!(e.to_string().contains("activation.txt"), "{e}");

        std::fs::remove_file(dir.path().join("activation.txt")).unwrap();
        std::fs::write(dir.path().join("pasword_reset.txt"), "x").unwrap();
        let e = MailTemplates::load(Some(dir.path()), "Acme").unwrap_err();
        assert!(e.to_string().contains("not a mail template"), "{e}");

        std::fs::remove_file(dir.path().join("pasword_reset.txt")).unwrap();
        std::fs::write(dir.path().join("test.html"), "{% if %}").unwrap();
        assert!(MailTemplates::load(Some(dir.path()), "Acme").is_err());
    }
}
