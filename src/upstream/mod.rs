//! What reaches the app: identity headers, forwarding headers it may trust,
//! and the built-in echo app.

pub mod echo;
pub mod forwarding;
pub mod headers;
