//! Echo server: every byte a client sends comes back, from the slab it landed in (no copy).
//!
//! Run it (all cores by default):
//!
//! ```text
//! cargo run --release --example echo -- --addr 127.0.0.1:7000 [--cores 0,1]
//! ```
//!
//! Load it:
//!
//! ```text
//! cargo run --release --bin shardnet-load -- --addr 127.0.0.1:7000 --protocol echo \
//!     --connections 50 --size 64 --duration 10s
//! ```
//!
//! Stop it with Ctrl-C or `kill -TERM <pid>`: it drains open connections, prints per-shard
//! stats and the merged latency percentiles, and exits 0.

use clap::Parser;
use shardnet::{ConnError, Cores, PoolConfig, Server, ServerConfig};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "shardnet echo server")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:7000")]
    addr: SocketAddr,
    /// Cores to run shards on: `all`, a count, or a list like `0,1` / `0-3`.
    #[arg(long, default_value = "all")]
    cores: Cores,
    /// Bytes per pool slab.
    #[arg(long, default_value_t = PoolConfig::default().slab_size)]
    slab_size: usize,
    /// Slabs per shard.
    #[arg(long, default_value_t = PoolConfig::default().slabs)]
    slabs: usize,
    /// Close connections idle for this many seconds (0 disables).
    #[arg(long, default_value_t = 60)]
    recv_timeout: u64,
    /// Connections per shard.
    #[arg(long, default_value_t = ServerConfig::default().max_connections)]
    max_connections: usize,
    /// Seconds a shutdown lets open connections finish.
    #[arg(long, default_value_t = 5)]
    drain: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = ServerConfig {
        addr: args.addr,
        cores: args.cores,
        pool: PoolConfig {
            slab_size: args.slab_size,
            slabs: args.slabs,
            ..PoolConfig::default()
        },
        recv_timeout: (args.recv_timeout > 0).then(|| Duration::from_secs(args.recv_timeout)),
        max_connections: args.max_connections,
        drain_timeout: Duration::from_secs(args.drain),
        ..ServerConfig::default()
    };
    let server = match Server::start(config, |mut conn, _shard| async move {
        while let Some(chunk) = conn.recv().await? {
            conn.send_chunk(chunk).await?;
        }
        Ok::<(), ConnError>(())
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!(
        "echo: listening on {} with {} shards on cores {:?}",
        server.local_addr(),
        server.shard_count(),
        server.cores()
    );
    let handle = server.handle();
    let mut signals = match signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("echo: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("echo: signal {sig}, shutting down");
            handle.shutdown();
        }
    });
    match server.join() {
        Ok(stats) => {
            println!("{stats}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("echo: {e}");
            ExitCode::FAILURE
        }
    }
}
