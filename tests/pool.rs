//! Pool bound: with more concurrent senders than slabs, slabs in use never exceed the pool,
//! receivers wait (backpressure) instead of allocating, every byte is delivered, and every
//! slab is free again once the clients are gone. A handler that holds slabs while waiting for
//! more cannot wedge the shard: the receive timeout ends the waiters.

mod util;

use shardnet::{ConnError, Connection, Cores, Server, ServerConfig, ShardContext};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

const SLABS: usize = 8;
/// Slabs receivers can take: all of them with the glommio backend; with the io_uring backend
/// the kernel is lent all but an eighth, which stays free for writes.
const RECEIVABLE: u64 = (SLABS - SLABS / 8) as u64;

fn one_shard_tiny_pool() -> ServerConfig {
    let mut config = util::config();
    config.cores = Cores::Count(1);
    config.pool.slabs = SLABS;
    config.pool.slab_size = 2048;
    config
}

/// Echo that holds each chunk for a millisecond before sending it back, to keep slabs busy.
async fn slow_echo(mut conn: Connection, _shard: ShardContext<()>) -> Result<(), ConnError> {
    while let Some(chunk) = conn.recv().await? {
        shardnet::task::sleep(Duration::from_millis(1)).await;
        conn.send_chunk(chunk).await?;
    }
    Ok(())
}

/// Holds one chunk while receiving a second (a bad pattern: see `Connection::recv_into`).
async fn hold_two(mut conn: Connection, _shard: ShardContext<()>) -> Result<(), ConnError> {
    while let Some(a) = conn.recv().await? {
        let b = conn.recv().await?;
        conn.push(a).await?;
        if let Some(b) = b {
            conn.push(b).await?;
        }
        conn.flush().await?;
    }
    Ok(())
}

/// `clients` clients connect, then all send `bytes` at once (pausing `pause` after the first
/// 100 bytes) and read the echo back. Returns how many got every byte back intact.
fn run_clients(addr: SocketAddr, clients: usize, bytes: usize, pause: Duration) -> usize {
    let start_line = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let start_line = start_line.clone();
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                start_line.wait(); // everyone connected: now all send at once
                let msg: Vec<u8> = (0..bytes).map(|j| (i * 31 + j * 7) as u8).collect();
                let mut w = s.try_clone().unwrap();
                let expected = msg.clone();
                let writer = std::thread::spawn(move || {
                    if w.write_all(&msg[..100]).is_err() {
                        return;
                    }
                    std::thread::sleep(pause);
                    for part in msg[100..].chunks(1500) {
                        if w.write_all(part).is_err() {
                            return;
                        }
                    }
                    let _ = w.shutdown(std::net::Shutdown::Write);
                });
                let mut got = Vec::with_capacity(bytes);
                let _ = s.read_to_end(&mut got);
                writer.join().unwrap();
                got == expected
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap() as usize)
        .sum()
}

#[test]
fn more_senders_than_slabs_all_data_delivered_within_the_bound() {
    const CLIENTS: usize = 32;
    const BYTES: usize = 128 * 1024;
    let server = Server::start(one_shard_tiny_pool(), slow_echo).expect("server starts");

    // Sample the pool while the clients run.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, handle) = (stop.clone(), server.handle());
        std::thread::spawn(move || {
            let mut max_in_use = 0;
            while !stop.load(Ordering::SeqCst) {
                let p = handle
                    .stats(Duration::from_secs(10))
                    .expect("stats")
                    .merged()
                    .pool;
                assert!(
                    p.slabs_in_use <= SLABS as u64,
                    "in use {} > {SLABS}",
                    p.slabs_in_use
                );
                max_in_use = max_in_use.max(p.slabs_in_use);
                std::thread::sleep(Duration::from_millis(2));
            }
            max_in_use
        })
    };
    let intact = run_clients(server.local_addr(), CLIENTS, BYTES, Duration::ZERO);
    stop.store(true, Ordering::SeqCst);
    let max_seen = sampler.join().expect("sampler");
    assert_eq!(intact, CLIENTS, "every client got every byte back");

    let stats = util::wait_stats(&server, "connections closed and slabs returned", |s| {
        let m = s.merged();
        m.counters.connections_active == 0 && m.pool.slabs_in_use == 0
    });
    let m = stats.merged();
    eprintln!(
        "pool: high water {}/{SLABS}, waits {}, wait time {:.1} ms, max sampled {max_seen}",
        m.pool.high_water,
        m.pool.waits,
        m.pool.wait_ns as f64 / 1e6
    );
    assert!(
        (RECEIVABLE..=SLABS as u64).contains(&m.pool.high_water),
        "the pool was exhausted, and never grew: high water {}",
        m.pool.high_water
    );
    assert!(
        m.pool.waits > 0,
        "{CLIENTS} senders on {SLABS} slabs must have waited"
    );
    assert!(!m.pool_wait.is_empty(), "pool waits are in the histogram");
    assert_eq!(m.counters.bytes_received, (CLIENTS * BYTES) as u64);
    assert_eq!(m.counters.bytes_sent, (CLIENTS * BYTES) as u64);
}

#[test]
fn slab_hoarding_handlers_are_ended_by_the_receive_timeout() {
    let mut config = one_shard_tiny_pool();
    config.recv_timeout = Some(Duration::from_millis(500));
    config.timer_resolution = Duration::from_millis(20);
    let server = Server::start(config, hold_two).expect("server starts");
    // 32 connections send a first piece, then the rest after a pause: 8 of them hold a slab
    // each and wait for a second one, the others wait for any — every slab is taken and
    // every connection waits on the pool. The receive timeout ends the waiters, their slabs
    // return, and the shard serves again.
    let intact = run_clients(
        server.local_addr(),
        32,
        64 * 1024,
        Duration::from_millis(300),
    );
    let stats = util::wait_stats(&server, "connections closed and slabs returned", |s| {
        let m = s.merged();
        m.counters.connections_active == 0 && m.pool.slabs_in_use == 0
    });
    let m = stats.merged();
    assert!(m.pool.high_water <= SLABS as u64);
    eprintln!(
        "hoarding: {intact}/32 intact; closed by timeout {}, by peer {}, waits {}",
        m.counters.closed_timeout, m.counters.closed_peer, m.pool.waits
    );
    assert!(m.pool.high_water >= RECEIVABLE, "the pool was wedged");
    assert!(m.counters.closed_timeout >= 8, "the waiters were timed out");
    // Afterwards a well-behaved client is served.
    let mut s = util::connect(server.local_addr());
    let mut buf = Vec::new();
    s.write_all(b"after the storm").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    s.read_to_end(&mut buf).unwrap();
    assert_eq!(buf, b"after the storm");
}
