//! A sharded, shared-nothing key-value server speaking RESP2 (the Redis protocol).
//!
//! Serves PING, ECHO, GET, SET (EX/PX/NX/XX/KEEPTTL), DEL, EXISTS, INCR/DECR/INCRBY/DECRBY,
//! MGET, MSET, DBSIZE, FLUSHALL, SELECT 0, QUIT, and the parts of COMMAND, CONFIG GET and
//! CLIENT that redis-cli and redis-benchmark ask for; pipelining of any depth.
//!
//! The keyspace is partitioned by key hash (`shard_for_key`) over the shards, one per core;
//! each shard alone owns its partition. A connection stays on the shard that accepted it:
//! a request for a key owned elsewhere is forwarded to the owner over the cross-shard mesh,
//! batched — every remote command of one received pipeline goes to its owner in one message —
//! and the replies are written back in request order with one flush (see `batch.rs`).
//! Multi-key commands split by owner, fan out and gather in argument order. Each shard sweeps
//! its expired keys ten times a second.
//!
//! Run it (all cores by default; `--cores 0` for one shard on core 0):
//!
//! ```text
//! cargo run --release --example kv -- --addr 127.0.0.1:6380 [--cores 0,1] [--max-bulk 16777216]
//! ```
//!
//! Talk to it and load it with the real clients (Debian: `apt-get install redis-tools`):
//!
//! ```text
//! redis-cli -p 6380 set greeting hello
//! redis-cli -p 6380 mget greeting nokey
//! redis-benchmark -p 6380 -t ping,set,get,incr,mset -n 100000 -c 50 -P 16 -q
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:6380 --protocol resp \
//!     --connections 50 --size 64 --duration 10s
//! ```
//!
//! Stop it with Ctrl-C or `kill -TERM <pid>` (drains, prints per-shard stats and the latency
//! distribution); `kill -USR1 <pid>` prints them while it runs.

#[path = "../common/mod.rs"]
mod common;
#[path = "../support/recv_buf.rs"]
mod recv_buf;

mod batch;
mod conn;
mod forward;
mod shard;

use clap::Parser;
use shardnet::mesh::Mesh;
use shardnet::protocol::resp::Limits;
use shardnet::Server;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(about = "shardnet sharded RESP2 key-value server")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
    /// Longest bulk string (key or value) accepted, in bytes; longer ones get an error and
    /// the connection is closed.
    #[arg(long, default_value_t = Limits::default().max_bulk_len)]
    max_bulk: usize,
    /// Most arguments in one request.
    #[arg(long, default_value_t = Limits::default().max_array_len)]
    max_array: usize,
    /// Longest inline command line, in bytes.
    #[arg(long, default_value_t = Limits::default().max_inline_len)]
    max_inline: usize,
    /// Most bytes one request may take on a connection (the bound of its reassembly buffer).
    /// Default: twice --max-bulk plus 64 KiB.
    #[arg(long)]
    max_request: Option<usize>,
    /// Messages each cross-shard channel buffers.
    #[arg(long, default_value_t = 1024)]
    mesh_capacity: usize,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.server.config("127.0.0.1:6380") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kv: {e}");
            return ExitCode::from(2);
        }
    };
    let shards = match config.resolve_cores() {
        Ok(cores) => cores.len(),
        Err(e) => {
            eprintln!("kv: {e}");
            return ExitCode::from(2);
        }
    };
    let settings = shard::Settings {
        limits: Limits {
            max_bulk_len: args.max_bulk,
            max_array_len: args.max_array,
            max_inline_len: args.max_inline,
        },
        max_request: args
            .max_request
            .unwrap_or_else(|| args.max_bulk.saturating_mul(2).saturating_add(64 << 10)),
    };
    if settings.max_request < 1024 || args.max_array == 0 {
        eprintln!("kv: --max-request must be at least 1024 and --max-array at least 1");
        return ExitCode::from(2);
    }
    let forwards: Mesh<forward::Forward> = Mesh::new(shards, args.mesh_capacity);
    let answers: Mesh<forward::Answer> = Mesh::new(shards, args.mesh_capacity);
    let server = Server::start_with_state(
        config,
        move |info| shard::KvShard::start(info, forwards.clone(), answers.clone(), settings),
        conn::serve,
    );
    match server {
        Ok(server) => common::run("kv", server, &args.server),
        Err(e) => {
            eprintln!("kv: {e}");
            ExitCode::FAILURE
        }
    }
}
