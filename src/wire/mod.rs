//! The actors' own Redis client, for the per-event hot paths: RESP encoded
//! into reused buffers and replies scanned in place (`resp`, `entries`),
//! over TCP or TLS connections (`conn`, `link`): pipelined for producers, one
//! request at a time for consumers (`session`). redis-rs builds a `Value`
//! tree per reply and two vectors per command; on the XADD -> XREADGROUP ->
//! XACK path those allocations were most of the harness's CPU. The rare
//! commands (XAUTOCLAIM, the dead-letter MULTI) are packed by redis-rs and
//! their replies parsed by it; setup, sampling and verification use
//! redis-rs connections throughout. `slots` is a Redis Cluster's slot map,
//! which commands are routed by.

pub mod conn;
pub mod entries;
mod link;
pub mod pipeline;
pub mod resp;
pub mod session;
pub mod slots;

pub use conn::{Endpoint, Raw, Replies, Writer};
pub use pipeline::Outstanding;
pub use resp::Reply;
pub use session::Session;

/// A connection as `Endpoint::open` hands it over: its two halves.
pub type Opened = (Replies, Writer);
