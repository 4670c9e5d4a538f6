//! # shardnet
//!
//! A thread-per-core sharded TCP server framework. Each selected core runs one *shard*: an OS
//! thread pinned to the core, running a glommio executor (io_uring), that owns everything it
//! touches —
//!
//! * **its own listening socket** on the shared address (`SO_REUSEPORT`): the kernel spreads
//!   connections, and a connection lives and dies on the shard that accepted it;
//! * **its own buffer pool**: one contiguous region, allocated once at start and carved into
//!   fixed slabs ([`pool`]). Receives land directly in slabs; an idle connection holds none;
//!   when the pool is empty the shard stops reading and TCP pushes back. Memory is bounded by
//!   configuration, not by the number of clients;
//! * **its own sequence counter**: every received [`Chunk`] is stamped in completion order,
//!   so a consumer can always restore byte order — a plain `Cell`, since nothing crosses
//!   threads;
//! * **sync-first sends**: a non-blocking `sendmsg` first, the reactor only when the socket
//!   buffer is full, counted per shard; vectored, and bounded per connection;
//! * **its own stats**: counters and HdrHistogram histograms, merged only when read.
//!
//! ```text
//!  ┌────────────── shard 0 (core 0) ─────────────┐ ┌── shard 1 (core 1) ──┐
//!  │ listener :PORT (SO_REUSEPORT)               │ │ listener :PORT        │  ...
//!  │ pool  [slab|slab|slab|...]  one mmap        │ │ pool  [slab|...]      │
//!  │ seq   Cell<u64>                             │ │ seq                   │
//!  │ conns: tasks, never migrate                 │ │ conns                 │
//!  │ stats + histograms                          │ │ stats                 │
//!  └─────────────────────────────────────────────┘ └───────────────────────┘
//! ```
//!
//! ## Example: an echo server
//!
//! ```no_run
//! use shardnet::{Server, ServerConfig};
//!
//! let config = ServerConfig {
//!     addr: "127.0.0.1:7000".parse().unwrap(),
//!     ..ServerConfig::default()
//! };
//! let server = Server::start(config, |mut conn, _shard| async move {
//!     // Each chunk is a pool slab; sending it back copies nothing.
//!     while let Some(chunk) = conn.recv().await? {
//!         conn.send_chunk(chunk).await?;
//!     }
//!     Ok::<(), shardnet::ConnError>(())
//! })
//! .expect("server starts");
//! println!("listening on {}", server.local_addr());
//! server.shutdown();
//! let stats = server.join().expect("shards stop cleanly");
//! println!("{stats}");
//! ```
//!
//! A handler is an async closure run once per connection on the shard that accepted it,
//! with a [`ShardContext`] giving the shard's id, stats, pool and the user state built once
//! per shard ([`Server::start_with_state`]). [`Connection`] also implements futures-lite's
//! `AsyncRead`, `AsyncBufRead` and `AsyncWrite`.
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![deny(unsafe_op_in_unsafe_fn)]
#![doc(test(attr(deny(warnings))))]

mod config;
mod conn;
mod control;
mod driver;
mod error;
pub mod hgrm;
pub mod mesh;
pub mod pool;
pub mod protocol;
mod server;
mod shard;
mod slots;
pub mod stats;
mod sys;
pub mod task;

pub use config::{ConfigError, Cores, IoBackend, ServerConfig};
pub use conn::{Chunk, CloseReason, ConnError, ConnId, Connection, QUEUE_SLOTS};
pub use error::{ShardFailure, StartError, StatsError};
pub use pool::{Pool, PoolConfig, Slab};
pub use server::{Server, ServerHandle};
pub use shard::{HandlerResult, ShardContext, ShardInfo};
pub use stats::{MergedStats, ShardCounters, ShardStats, StatsSnapshot};

/// The CPU ids this process may run on (its affinity mask), ascending: the cores
/// [`Cores::All`] selects.
pub fn allowed_cores() -> Vec<usize> {
    sys::limits::allowed_cores()
}

/// Raises this process's soft `RLIMIT_NOFILE` to its hard limit; returns `(before, after)`.
///
/// [`Server::start`] does this itself unless `raise_nofile_limit` is off; load generators and
/// tests that open many sockets call it directly.
///
/// # Errors
/// The `getrlimit`/`setrlimit` error.
pub fn raise_nofile_limit() -> std::io::Result<(u64, u64)> {
    sys::limits::raise_nofile_limit()
}
