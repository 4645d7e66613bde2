//! The page templates, compiled into the binary, with the deployer's
//! branding (`portal.title`, `portal.logo_url`, `portal.accent_color`) and
//! the favicon as globals every page reads; and the favicon itself.

use crate::config::PortalSettings;
use minijinja::Environment;

/// Buttons and links when `portal.accent_color` is not set.
pub const DEFAULT_ACCENT: &str = "#4a5afc";

/// Text on buttons drawn in a dark accent.
const LIGHT_TEXT: &str = "#ffffff";
/// Text on buttons drawn in a light accent.
const DARK_TEXT: &str = "#1d2330";

/// `(name, source)` of each file named, from `templates/`.
macro_rules! compiled_in {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/", $name)))),*]
    };
}

/// Every template of the pages.
const TEMPLATES: &[(&str, &str)] = compiled_in![
    "base.html",
    "error.html",
    "login.html",
    "logout.html",
    "setup.html",
    "two_factor.html",
    "recovery_codes.html",
    "account.html",
    "register.html",
    "reset.html",
    "message.html",
    "admin_users.html",
    "admin_user.html",
];

/// The templates, with `title`, `css`, `accent`, `on_accent`, `logo_url`
/// and `favicon` set for every page. `public_url` has no trailing slash.
pub fn environment(
    portal: &PortalSettings,
    public_url: &str,
) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = Environment::new();
    for (name, source) in TEMPLATES {
        env.add_template(name, source)?;
    }
    let accent = accent(portal);
    env.add_global("title", portal.title.clone());
    env.add_global("css", super::PAGE_CSS);
    env.add_global("accent", accent.to_owned());
    env.add_global("on_accent", text_on(accent));
    env.add_global("logo_url", portal.logo_url.clone());
    env.add_global(
        "favicon",
        format!("{public_url}{}/favicon.svg", portal.prefix),
    );
    Ok(env)
}

/// `portal.accent_color`, or the default.
pub fn accent(portal: &PortalSettings) -> &str {
    portal.accent_color.as_deref().unwrap_or(DEFAULT_ACCENT)
}

/// `#rgb` or `#rrggbb` as three channels from 0 to 1 (black if unreadable:
/// the configuration has already refused anything else).
fn channels(color: &str) -> [f64; 3] {
    let hex = color.trim_start_matches('#');
    let digit = |i: usize, width: usize| {
        let part = hex.get(i * width..(i + 1) * width).unwrap_or("0");
        let value = u8::from_str_radix(part, 16).unwrap_or(0);
        match width {
            1 => f64::from(value * 17) / 255.0,
            _ => f64::from(value) / 255.0,
        }
    };
    let width = if hex.len() == 3 { 1 } else { 2 };
    [digit(0, width), digit(1, width), digit(2, width)]
}

/// WCAG relative luminance.
fn luminance(color: &str) -> f64 {
    let linear = |c: f64| {
        if c <= 0.039_28 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let [r, g, b] = channels(color);
    0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b)
}

/// The text colour that reads best on `accent`: white, or the pages' dark ink.
pub fn text_on(accent: &str) -> &'static str {
    let l = luminance(accent);
    let on_light = (l + 0.05) / (luminance(DARK_TEXT) + 0.05);
    let on_dark = 1.05 / (l + 0.05);
    if on_dark >= on_light {
        LIGHT_TEXT
    } else {
        DARK_TEXT
    }
}

/// The favicon: a shield with a portcullis gate, in the accent colour.
pub fn favicon_svg(accent: &str) -> String {
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path d="M16 1.5 28.5 6v8.5c0 8.1-5.3 13.8-12.5 16-7.2-2.2-12.5-7.9-12.5-16V6z" fill="{accent}"/><path d="M10.5 24v-8.5a5.5 5.5 0 0 1 11 0V24z" fill="#fff"/><path d="M14.2 10v14M17.8 10v14M10.5 18.5h11" stroke="{accent}" stroke-width="1.6"/></svg>"##
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_reads_on_the_accent() {
        assert_eq!(text_on(DEFAULT_ACCENT), LIGHT_TEXT);
        assert_eq!(text_on("#000"), LIGHT_TEXT);
        assert_eq!(text_on("#ffcc00"), DARK_TEXT);
        assert_eq!(text_on("#fff"), DARK_TEXT);
    }

    #[test]
    fn short_colours_read_as_long_ones() {
        assert_eq!(channels("#fa0"), channels("#ffaa00"));
    }
}
