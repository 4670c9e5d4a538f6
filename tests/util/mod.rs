//! Shared helpers for the integration tests: small server configs on port 0, blocking clients
//! with timeouts, and waiting on the server's stats with a deadline.
#![allow(dead_code)] // each test binary uses a different subset

use shardnet::{ConnError, Cores, PoolConfig, Server, ServerConfig, ShardContext, StatsSnapshot};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits on; far above what a noisy 2-core machine needs.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Shards the tests run: two (the CI machine has two cores), or one on a one-core machine.
pub fn shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2)
}

/// A configuration for tests: loopback port 0, [`shards`] shards, a small pool.
pub fn config() -> ServerConfig {
    ServerConfig {
        cores: Cores::Count(shards()),
        pool: PoolConfig {
            slab_size: 16 * 1024,
            slabs: 256,
            ..PoolConfig::default()
        },
        max_connections: 1024,
        drain_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

/// The echo handler of the example: every chunk goes back out without a copy.
pub async fn echo(
    mut conn: shardnet::Connection,
    _shard: ShardContext<()>,
) -> Result<(), ConnError> {
    while let Some(chunk) = conn.recv().await? {
        conn.send_chunk(chunk).await?;
    }
    Ok(())
}

/// Starts an echo server with `config`.
pub fn start_echo(config: ServerConfig) -> Server {
    Server::start(config, echo).expect("echo server starts")
}

/// A blocking client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the test server");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and reads exactly as many bytes back.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8], buf: &mut Vec<u8>) {
    s.write_all(msg).expect("write");
    buf.resize(msg.len(), 0);
    s.read_exact(buf).expect("read echo");
}

/// Polls the server's stats until `done` holds, or panics after [`PATIENCE`].
pub fn wait_stats(
    server: &Server,
    what: &str,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let start = Instant::now();
    loop {
        let s = server.stats(Duration::from_secs(10)).expect("stats");
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for: {what}\n{s}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until EOF or error; returns the bytes read and whether it ended with EOF (vs error).
pub fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, Result<(), std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}
