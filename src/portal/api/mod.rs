//! The portal's JSON API for programs under `{prefix}/api`. Bodies are JSON
//! only; answers are `{"error", "message"}` on failure (see `json`).
//! `openapi` describes every endpoint at `api/openapi.json`.

pub(super) mod accounts;
pub(super) mod api_keys;
pub(super) mod audit;
pub(super) mod auth;
pub(super) mod explain;
pub(super) mod openapi;
pub(super) mod password;
pub(super) mod sessions;
pub(super) mod sso;
pub(super) mod two_factor;
pub(super) mod users;
