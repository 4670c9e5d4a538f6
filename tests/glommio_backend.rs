//! The glommio backend (`IoBackend::Glommio`: glommio's stream types, readiness on glommio's
//! reactor) passes the same core checks as the default io_uring backend: every byte through
//! many connections, backpressure on a tiny pool, receive timeouts, graceful shutdown.

mod util;

use shardnet::{IoBackend, ServerConfig};
use std::io::Write;
use std::time::{Duration, Instant};

fn config() -> ServerConfig {
    let mut c = util::config();
    c.io_backend = IoBackend::Glommio;
    c
}

#[test]
fn streams_intact_through_many_connections() {
    let server = util::start_echo(config());
    assert_eq!(
        util::stream_through(server.local_addr(), 64, 512 * 1024, 3),
        64 * 512 * 1024
    );
    let stats = util::wait_stats(&server, "closed, slabs back", |s| {
        let m = s.merged();
        m.counters.connections_active == 0 && m.pool.slabs_in_use == 0
    });
    assert_eq!(stats.merged().counters.closed_peer, 64);
}

#[test]
fn tiny_pool_backpressure_delivers_everything() {
    let mut c = config();
    c.pool.slabs = 4;
    c.pool.slab_size = 4096;
    let server = util::start_echo(c);
    assert_eq!(
        util::stream_through(server.local_addr(), 16, 128 * 1024, 9),
        16 * 128 * 1024
    );
    let m = util::wait_stats(&server, "closed", |s| {
        s.merged().counters.connections_active == 0
    })
    .merged();
    assert!(m.pool.high_water <= 4 * util::shards() as u64);
    assert_eq!(m.pool.slabs_in_use, 0);
}

#[test]
fn idle_connections_time_out_and_shutdown_drains() {
    let mut c = config();
    c.recv_timeout = Some(Duration::from_millis(300));
    c.timer_resolution = Duration::from_millis(20);
    let server = util::start_echo(c);
    let mut idle = util::connect(server.local_addr());
    let t = Instant::now();
    let (rest, end) = util::read_to_end_or_error(&mut idle);
    assert!(rest.is_empty() && end.is_ok());
    assert!(t.elapsed() >= Duration::from_millis(300));
    let mut busy = util::connect(server.local_addr());
    let mut buf = Vec::new();
    util::roundtrip(&mut busy, b"hello", &mut buf);
    busy.write_all(b"").unwrap();
    server.shutdown();
    let stats = server.join().expect("clean stop");
    let c = stats.merged().counters;
    assert_eq!(c.closed_timeout, 1);
    assert_eq!(c.closed_shutdown, 1);
}
