//! Gatehouse: an authentication sidecar built on Pingora.
//!
//! A request flows through the modules in this order:
//! [`config`] (read and checked once, compiled by [`settings`]) → [`credentials`] (parse) → [`authn`] (verify
//! into an [`identity::Identity`], through the cache, then the [`directory`]
//! and the [`store`]; bearer JWTs through [`tokens`]) → [`policy`] (decide),
//! with [`regulation`] refusing password guessers first and [`two_factor`]
//! asking people for their second factor,
//! joined up by [`gate`] → [`respond`] (denials) or [`upstream::headers`]
//! (identity headers for the app). [`forward_auth`] asks the same gate for
//! Traefik, Caddy and nginx. [`proxy`] is the Pingora glue, [`portal`] the
//! pages and API under the prefix, [`server`] the assembly. [`accounts`] keeps
//! the rules for creating users and stored API keys, whoever creates them.
//! [`mail`] renders mail and delivers the store's outbox over SMTP.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod authn;
pub mod commands;
pub mod config;
pub mod credentials;
pub mod directory;
pub mod forward_auth;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub mod identity;
pub mod mail;
pub mod metrics;
pub mod permission;
pub mod policy;
pub mod portal;
pub mod proxy;
pub mod redirect;
pub mod regulation;
pub mod request;
pub mod respond;
pub mod server;
pub mod session;
pub mod settings;
pub mod sso;
pub mod store;
pub mod tokens;
pub mod two_factor;
pub mod upstream;
