//! Lifecycle: receive timeout, connection limit, close reasons, graceful shutdown and its
//! deadline, and typed start errors.

mod util;

use shardnet::{ConnError, Connection, Cores, IoBackend, Server, ShardContext, StartError};
use std::io::{ErrorKind, Read, Write};
use std::time::{Duration, Instant};

#[test]
fn idle_connection_is_closed_at_the_receive_timeout() {
    let mut config = util::config();
    config.recv_timeout = Some(Duration::from_millis(300));
    config.timer_resolution = Duration::from_millis(20);
    let server = util::start_echo(config);
    let mut s = util::connect(server.local_addr());
    let mut buf = Vec::new();
    util::roundtrip(&mut s, b"ping", &mut buf);
    let idle_from = Instant::now();
    let (rest, end) = util::read_to_end_or_error(&mut s);
    let idle = idle_from.elapsed();
    assert!(rest.is_empty());
    end.expect("closed cleanly by the server");
    assert!(
        idle >= Duration::from_millis(300),
        "closed after {idle:?}, before the timeout"
    );
    let stats = util::wait_stats(&server, "timeout counted", |s| {
        s.merged().counters.closed_timeout == 1
    });
    let c = stats.merged().counters;
    assert_eq!(c.recv_timeouts, 1);
    assert_eq!(c.connections_active, 0);
    // A busy connection is not timed out: keep talking across several timeout periods.
    let mut s = util::connect(server.local_addr());
    for _ in 0..8 {
        util::roundtrip(&mut s, b"still here", &mut buf);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        server
            .stats(Duration::from_secs(5))
            .unwrap()
            .merged()
            .counters
            .closed_timeout,
        1
    );
}

#[test]
fn connections_over_the_limit_are_accepted_and_closed() {
    let mut config = util::config();
    config.cores = Cores::Count(1);
    config.max_connections = 2;
    let server = util::start_echo(config);
    let addr = server.local_addr();
    let mut kept: Vec<_> = (0..2).map(|_| util::connect(addr)).collect();
    let mut buf = Vec::new();
    for s in &mut kept {
        util::roundtrip(s, b"hello", &mut buf); // both are being served
    }
    for _ in 0..3 {
        let mut extra = util::connect(addr);
        let _ = extra.write_all(b"x");
        let (got, _) = util::read_to_end_or_error(&mut extra);
        assert!(got.is_empty(), "an excess connection gets no service");
    }
    let stats = util::wait_stats(&server, "rejections counted", |s| {
        s.merged().counters.connections_rejected == 3
    });
    assert_eq!(stats.merged().counters.connections_active, 2);
    for s in &mut kept {
        util::roundtrip(s, b"unaffected", &mut buf);
    }
}

#[test]
fn close_reasons_are_counted() {
    let mut config = util::config();
    config.cores = Cores::Count(1);
    let server = util::start_echo(config);
    let addr = server.local_addr();
    let mut buf = Vec::new();
    // Peer closes.
    let mut s = util::connect(addr);
    util::roundtrip(&mut s, b"a", &mut buf);
    drop(s);
    // Peer resets (SO_LINGER 0 with unread data on our side makes the close an RST).
    let s = util::connect(addr);
    let sock = socket2::SockRef::from(&s);
    sock.set_linger(Some(Duration::ZERO)).unwrap();
    let mut s2 = s;
    s2.write_all(b"some bytes").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drop(s2);
    let stats = util::wait_stats(&server, "both closes counted", |s| {
        let c = s.merged().counters;
        c.closed_peer == 1 && c.closed_reset == 1
    });
    assert_eq!(stats.merged().counters.connections_closed(), 2);
}

#[test]
fn shutdown_drains_idle_connections_promptly() {
    let server = util::start_echo(util::config());
    let mut conns: Vec<_> = (0..10)
        .map(|_| util::connect(server.local_addr()))
        .collect();
    let mut buf = Vec::new();
    for s in &mut conns {
        util::roundtrip(s, b"before shutdown", &mut buf);
    }
    let addr = server.local_addr();
    let t = Instant::now();
    server.shutdown();
    let stats = server.join().expect("clean stop");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "idle connections end at once, not at the deadline"
    );
    let c = stats.merged().counters;
    assert_eq!(c.closed_shutdown, 10);
    assert_eq!(c.connections_active, 0);
    for s in &mut conns {
        let (rest, _) = util::read_to_end_or_error(s);
        assert!(rest.is_empty());
    }
    // Nobody listens any more.
    let refused = std::net::TcpStream::connect(addr).expect_err("listeners are closed");
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
}

/// A handler that never finishes on its own and ignores the drain.
async fn stubborn(mut conn: Connection, _shard: ShardContext<()>) -> Result<(), ConnError> {
    let _first = conn.recv().await?;
    futures_lite::future::pending::<()>().await;
    Ok(())
}

#[test]
fn shutdown_closes_what_is_left_at_the_drain_deadline() {
    let mut config = util::config();
    config.drain_timeout = Duration::from_millis(400);
    let server = Server::start(config, stubborn).expect("server starts");
    let addr = server.local_addr();
    let mut conns: Vec<_> = (0..4).map(|_| util::connect(addr)).collect();
    for s in &mut conns {
        s.write_all(b"hold me").unwrap();
    }
    util::wait_stats(&server, "all four accepted", |s| {
        s.merged().counters.chunks_received == 4
    });
    let t = Instant::now();
    server.shutdown();
    let stats = server.join().expect("clean stop");
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400),
        "waited for the drain deadline ({took:?})"
    );
    assert!(
        took < Duration::from_secs(10),
        "and not much longer ({took:?})"
    );
    let c = stats.merged().counters;
    assert_eq!(c.closed_shutdown, 4);
    for s in &mut conns {
        let (rest, _) = util::read_to_end_or_error(s);
        assert!(rest.is_empty());
    }
}

#[test]
fn binding_an_address_in_use_is_an_error() {
    let first = util::start_echo(util::config());
    let mut config = util::config();
    config.addr = first.local_addr();
    match Server::start(config, util::echo) {
        Err(StartError::Bind { source, .. }) => assert_eq!(source.kind(), ErrorKind::AddrInUse),
        other => panic!("expected a bind error, got {other:?}"),
    }
    // A plain listener (not ours, no SO_REUSEPORT) also blocks the address.
    let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut config = util::config();
    config.addr = plain.local_addr().unwrap();
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::Bind { .. })
    ));
    // The first server is unaffected.
    let mut s = util::connect(first.local_addr());
    let mut buf = Vec::new();
    util::roundtrip(&mut s, b"still serving", &mut buf);
}

#[test]
fn bad_configurations_are_typed_errors() {
    let mut config = util::config();
    config.cores = Cores::List(vec![100_000]);
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::NoSuchCore { core: 100_000, .. })
    ));
    let mut config = util::config();
    config.cores = Cores::Count(100_000);
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::NotEnoughCores { .. })
    ));
    let mut config = util::config();
    config.pool.slabs = 0;
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::Config(_))
    ));
    // The io_uring backend lends at most 32768 slabs per shard to the kernel.
    let mut config = util::config();
    config.pool.slabs = 40_000;
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::Config(_))
    ));
    // A pool too large to map: a typed error from the shard, not a crash.
    let mut config = util::config();
    config.io_backend = IoBackend::Glommio;
    config.pool.slab_size = 16 * 1024 * 1024;
    config.pool.slabs = u32::MAX as usize;
    assert!(matches!(
        Server::start(config, util::echo),
        Err(StartError::Pool { .. })
    ));
}

#[test]
fn async_read_write_codecs_work_on_a_connection() {
    use futures_lite::io::{AsyncBufReadExt, AsyncWriteExt};
    let server = Server::start(util::config(), |conn: Connection, _shard| async move {
        let mut conn = conn;
        let mut line = String::new();
        loop {
            line.clear();
            if conn.read_line(&mut line).await? == 0 {
                return Ok::<(), std::io::Error>(());
            }
            let reply = line.trim_end().to_uppercase();
            conn.write_all(reply.as_bytes()).await?;
            conn.write_all(b"\n").await?;
            conn.flush().await?;
        }
    })
    .expect("server starts");
    let mut s = util::connect(server.local_addr());
    s.write_all(b"hello\nworld\n").unwrap();
    let mut got = [0u8; 12];
    s.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"HELLO\nWORLD\n");
}

#[test]
fn a_panicking_handler_closes_only_its_connection() {
    let server = Server::start(util::config(), |mut conn: Connection, _shard| async move {
        let chunk = conn.recv().await?;
        if chunk.as_deref() == Some(b"boom".as_slice()) {
            panic!("handler asked to panic");
        }
        if let Some(c) = chunk {
            conn.send_chunk(c).await?;
        }
        Ok::<(), ConnError>(())
    })
    .expect("server starts");
    let mut s = util::connect(server.local_addr());
    s.write_all(b"boom").unwrap();
    let (got, _) = util::read_to_end_or_error(&mut s);
    assert!(got.is_empty());
    let mut s = util::connect(server.local_addr());
    let mut buf = Vec::new();
    util::roundtrip(&mut s, b"fine", &mut buf);
    // The panicked connection closes with reason error (after its lingering close).
    let stats = util::wait_stats(&server, "panic counted", |s| {
        let c = s.merged().counters;
        c.handler_panics == 1 && c.closed_error == 1
    });
    assert_eq!(
        stats.merged().counters.closed_error,
        1,
        "only the panicked one"
    );
}

#[test]
fn an_idle_shard_does_not_spin() {
    // With idle connections open and none, the driver parks: a second later it has entered
    // its ring only for the stats requests themselves, not once per millisecond.
    let server = util::start_echo(util::config());
    let idle: Vec<_> = (0..20)
        .map(|_| util::connect(server.local_addr()))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = server
        .stats(Duration::from_secs(5))
        .unwrap()
        .merged()
        .counters;
    std::thread::sleep(Duration::from_secs(1));
    let after = server
        .stats(Duration::from_secs(5))
        .unwrap()
        .merged()
        .counters;
    let enters = after.ring_enters - before.ring_enters;
    let shards = util::shards() as u64;
    assert!(
        enters <= 20 * shards,
        "{enters} ring enters in an idle second"
    );
    assert_eq!(after.connections_active, 20);
    drop(idle);
}
