//! The server-rendered pages: sign-in and sign-out, the second-factor step,
//! the account page, and first-run setup. Every form is CSRF-protected.

pub(super) mod account;
pub(super) mod login;
pub(super) mod second_factor;
pub(super) mod setup;
