//! Echo server: every byte a client sends comes back, sent from the pool slab it landed in
//! (no copy). One shard per core; the template for a shardnet server.
//!
//! Run it (all cores by default; `--cores 0` pins it to core 0):
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 [--cores 0,1]
//! ```
//!
//! Load it (verifies every echoed byte):
//!
//! ```text
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:7000 --protocol echo \
//!     --connections 50 --size 64 --duration 10s
//! ```
//!
//! Stop it with Ctrl-C or `kill -TERM <pid>`: it drains open connections, prints per-shard
//! stats (connections, bytes, pool high-water, sync-send hit rate) and the merged latency
//! distribution, and exits 0. `kill -USR1 <pid>` prints them without stopping; `--hlog FILE`
//! writes an interval log while it runs.

#[path = "common/mod.rs"]
mod common;

use clap::Parser;
use shardnet::{ConnError, Server};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(about = "shardnet echo server")]
struct Args {
    #[command(flatten)]
    server: common::ServerArgs,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.server.config("127.0.0.1:7000") {
        Ok(c) => c,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::from(2);
        }
    };
    let server = Server::start(config, |mut conn, _shard| async move {
        while let Some(chunk) = conn.recv().await? {
            conn.send_chunk(chunk).await?;
        }
        Ok::<(), ConnError>(())
    });
    match server {
        Ok(server) => common::run("echo", server, &args.server),
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
