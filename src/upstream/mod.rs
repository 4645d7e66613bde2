//! What reaches the app: identity header mutation and the built-in echo app.

pub mod echo;
pub mod headers;
