//! Data integrity through the echo path: many concurrent connections stream random bytes in
//! random-size writes while reading; every byte must come back, in order.

mod util;

use std::io::Write;
use util::stream_through;

#[test]
fn two_hundred_connections_stream_one_mib_each_intact() {
    let server = util::start_echo(util::config());
    let total = stream_through(server.local_addr(), 200, 1 << 20, 42);
    assert_eq!(total, 200 << 20);
    let stats = util::wait_stats(&server, "all connections closed", |s| {
        s.merged().counters.connections_active == 0
    });
    let m = stats.merged();
    assert_eq!(m.counters.connections_accepted, 200);
    assert_eq!(m.counters.bytes_received, 200 << 20);
    assert_eq!(m.counters.bytes_sent, 200 << 20);
    assert_eq!(m.counters.closed_peer, 200);
    assert_eq!(m.pool.slabs_in_use, 0, "every slab returned");
    let split: Vec<u64> = stats
        .shards
        .iter()
        .map(|s| s.counters.connections_accepted)
        .collect();
    eprintln!("connections per shard: {split:?}");
    server.shutdown();
    server.join().expect("clean stop");
}

#[test]
fn tiny_pool_still_delivers_every_byte() {
    // 4 slabs per shard for 32 streaming connections: receivers queue for slabs.
    let mut config = util::config();
    config.pool.slabs = 4;
    config.pool.slab_size = 4096;
    let server = util::start_echo(config);
    let total = stream_through(server.local_addr(), 32, 256 * 1024, 7);
    assert_eq!(total, 32 * 256 * 1024);
    let stats = util::wait_stats(&server, "all connections closed", |s| {
        s.merged().counters.connections_active == 0
    });
    let m = stats.merged();
    assert!(m.pool.high_water <= 4 * stats.shards.len() as u64);
    assert_eq!(m.pool.slabs_in_use, 0);
}

#[test]
fn half_close_gets_every_reply_byte() {
    let server = util::start_echo(util::config());
    let mut s = util::connect(server.local_addr());
    let msg: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let msg = msg.clone();
        std::thread::spawn(move || {
            w.write_all(&msg).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let (got, end) = util::read_to_end_or_error(&mut s);
    writer.join().unwrap();
    end.expect("clean EOF after the last reply byte");
    assert!(
        got == msg,
        "reply differs ({} of {} bytes)",
        got.len(),
        msg.len()
    );
}
