//! What reaches the app: the upstream request built in one pass (`request`)
//! from the identity headers (`headers`), the forwarding headers it may
//! trust (`forwarding`) and the hop-by-hop rules both ways (`hop`); and the
//! built-in echo app.

pub mod echo;
pub mod forwarding;
pub mod headers;
pub mod hop;
pub mod request;
