//! The server-rendered pages: sign-in and sign-out, the second-factor step,
//! the account page, first-run setup, registration and password reset,
//! single sign-on's round trip, and user administration. Every form is
//! CSRF-protected.

pub(super) mod account;
pub(super) mod accounts;
pub(super) mod admin;
pub(super) mod login;
pub(super) mod second_factor;
pub(super) mod setup;
pub(super) mod sso;
