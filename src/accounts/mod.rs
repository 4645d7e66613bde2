//! Accounts: the rules for creating and changing accounts and stored API
//! keys, in one place for everyone who does it: the `gatehouse user` and
//! `gatehouse apikey` commands, the setup page, config validation (which
//! names are valid), single sign-on, and soon self-registration and the
//! admin API.
//!
//! [`admin`] says who may administer accounts and who counts as an
//! administrator; [`users`] checks a user's name, email and password and turns a checked
//! [`users::NewAccount`] into the store's record with its password hashed;
//! [`api_keys`] checks a key's name and permissions and creates the key
//! (only its SHA-256 is stored); [`sso`] decides which account a single
//! sign-on opens (link, link by verified e-mail, or create). Callers keep their own way of telling the
//! problem (a form message, a JSON error code, a CLI line): each rule answers
//! with a typed error for them to map.

pub mod admin;
pub mod api_keys;
pub mod registration;
pub mod sso;
pub mod users;
