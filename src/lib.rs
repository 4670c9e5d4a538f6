//! shardnet: a thread-per-core sharded TCP server framework (skeleton; the core lands next).
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]

pub mod hgrm;
pub mod protocol;
