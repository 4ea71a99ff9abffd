//! chatd: a self-hosted chat server speaking the m3o `chat` and `chats` APIs.
//!
//! How a message travels, top to bottom (each module opens with its own story):
//! - [`http`]: parse, validate, answer with a micro error body on any failure;
//! - [`registry`]: the directory of chats: finds (or starts) the actor of a chat;
//! - [`chat`]: one actor per chat owns its state: assigns seq, de-duplicates by client id,
//!   changes membership, deletes; the sender waits for durability itself;
//! - [`store`]: the shared write-ahead log with group commit, snapshots, recovery.
//!
//! [`model`] and [`error`] sit below them all ([`names`]: ids packed for the directory); [`startup`] wires them together.

pub mod chat;
pub mod cli;
pub mod config;
pub mod error;
pub mod http;
pub mod model;
pub mod names;
pub mod rate;
pub mod registry;
pub mod startup;
pub mod store;
pub mod telemetry;
