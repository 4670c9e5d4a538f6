//! Hostile and faulty peers: slowloris, slow readers, resets mid-stream, peers that vanish
//! while waiting for a slab. The server must keep serving good clients, count every close
//! reason, and give every slab back.

mod util;

use shardnet::{ConnError, Connection, Cores, Server, ShardContext};
use std::io::{ErrorKind, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn slowloris_peers_are_timed_out_while_a_good_client_is_served() {
    const TRICKLERS: usize = 500;
    let mut config = util::config();
    config.recv_timeout = Some(Duration::from_millis(800));
    config.timer_resolution = Duration::from_millis(20);
    let server = util::start_echo(config);
    let addr = server.local_addr();

    // A good client: request/response the whole time, every reply checked.
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = util::connect(addr);
            let mut buf = Vec::new();
            let mut n = 0u64;
            while !stop.load(Ordering::SeqCst) {
                let msg = n.to_le_bytes();
                util::roundtrip(&mut s, &msg, &mut buf);
                assert_eq!(buf, msg);
                n += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            (n, s)
        })
    };

    // Tricklers: one byte each, then nothing for longer than the receive timeout.
    let mut tricklers: Vec<TcpStream> = (0..TRICKLERS).map(|_| util::connect(addr)).collect();
    for t in &mut tricklers {
        t.write_all(b"x").unwrap();
    }
    let stats = util::wait_stats(&server, "every trickler timed out", |s| {
        s.merged().counters.closed_timeout >= TRICKLERS as u64
    });
    let c = stats.merged().counters;
    assert_eq!(
        c.closed_timeout, TRICKLERS as u64,
        "exactly the tricklers timed out"
    );
    assert_eq!(c.recv_timeouts, TRICKLERS as u64);
    // Each trickler got its byte echoed, then end of stream.
    for t in &mut tricklers {
        let (got, _) = util::read_to_end_or_error(t);
        assert_eq!(got, b"x");
    }
    stop.store(true, Ordering::SeqCst);
    let (served, _still_open) = good.join().expect("the good client never failed");
    assert!(
        served > 10,
        "the good client kept being served ({served} round trips)"
    );
    let c = server
        .stats(Duration::from_secs(5))
        .unwrap()
        .merged()
        .counters;
    assert_eq!(c.connections_active, 1, "only the good client is left");
    assert_eq!(
        c.closed_timeout, TRICKLERS as u64,
        "the good client was never timed out"
    );
}

#[test]
fn a_peer_that_never_reads_is_closed_by_the_send_timeout_and_holds_bounded_memory() {
    let mut config = util::config();
    config.cores = Cores::Count(1);
    config.send_timeout = Some(Duration::from_millis(500));
    config.timer_resolution = Duration::from_millis(20);
    config.max_pending_send = 64 * 1024;
    let server = util::start_echo(config);
    let addr = server.local_addr();

    // Write until the connection is full in both directions, never reading.
    let mut hog = util::connect(addr);
    hog.set_nonblocking(true).unwrap();
    let block = vec![0xABu8; 64 * 1024];
    let mut written = 0usize;
    let start = Instant::now();
    let mut blocked_since: Option<Instant> = None;
    while start.elapsed() < Duration::from_secs(20) {
        match hog.write(&block) {
            Ok(n) => {
                written += n;
                blocked_since = None;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let since = *blocked_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_millis(200) {
                    break; // both directions full: the server stopped reading us
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => break, // already closed by the server
        }
    }
    assert!(written > 0);
    // While the hog is stuck, the server holds its echo in flight plus at most two received
    // chunks (the io_uring backend's per-connection receive queue): a handful of slabs, not
    // the megabytes the hog pushed.
    let p = server.stats(Duration::from_secs(5)).unwrap().merged().pool;
    assert!(
        p.slabs_in_use <= 4,
        "a stuck peer holds {} slabs",
        p.slabs_in_use
    );
    // Another client is unaffected.
    let mut good = util::connect(addr);
    let mut buf = Vec::new();
    util::roundtrip(&mut good, b"still fast", &mut buf);
    let stats = util::wait_stats(&server, "send timeout fired", |s| {
        s.merged().counters.send_timeouts == 1
    });
    let c = stats.merged().counters;
    assert_eq!(c.closed_timeout, 1);
    eprintln!("the hog pushed {written} bytes before the server stopped reading it");
    util::roundtrip(&mut good, b"and after", &mut buf);
    let p = util::wait_stats(&server, "slabs back", |s| s.merged().pool.slabs_in_use == 0)
        .merged()
        .pool;
    // The hog's send in flight, the chunk queued behind it and two received chunks, plus the
    // good client's chunk: a handful of slabs at the peak.
    assert!(p.high_water <= 6, "high water {} slabs", p.high_water);
}

#[test]
fn reset_in_the_middle_of_a_stream_is_counted_and_frees_everything() {
    let server = util::start_echo(util::config());
    let addr = server.local_addr();
    for i in 0..20 {
        let s = util::connect(addr);
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        let mut w = s.try_clone().unwrap();
        // Push a lot without reading, then vanish with a reset.
        w.set_nonblocking(true).unwrap();
        let chunk = vec![i as u8; 32 * 1024];
        for _ in 0..16 {
            let _ = w.write(&chunk);
        }
        drop(w);
        drop(s);
    }
    let stats = util::wait_stats(&server, "all 20 closed, slabs back", |s| {
        let m = s.merged();
        m.counters.connections_closed() == 20 && m.pool.slabs_in_use == 0
    });
    let c = stats.merged().counters;
    assert!(c.closed_reset >= 1, "resets are counted: {c:?}");
    assert_eq!(
        c.closed_reset + c.closed_peer,
        20,
        "only resets or EOFs: {c:?}"
    );
    assert_eq!(c.handler_panics, 0);
    let mut s = util::connect(addr);
    let mut buf = Vec::new();
    util::roundtrip(&mut s, b"alive", &mut buf);
}

/// Holds every chunk for 50 ms: keeps a tiny pool exhausted.
async fn sluggish(mut conn: Connection, _shard: ShardContext<()>) -> Result<(), ConnError> {
    while let Some(chunk) = conn.recv().await? {
        shardnet::task::sleep(Duration::from_millis(50)).await;
        conn.send_chunk(chunk).await?;
    }
    Ok(())
}

#[test]
fn peers_that_leave_during_a_pool_wait_are_counted_and_slabs_come_back() {
    let mut config = util::config();
    config.cores = Cores::Count(1);
    config.pool.slabs = 2;
    config.pool.slab_size = 1024;
    let server = Server::start(config, sluggish).expect("server starts");
    let addr = server.local_addr();
    // Two busy clients keep both slabs taken...
    let busy: Vec<_> = (0..2)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                let mut buf = Vec::new();
                for _ in 0..20 {
                    util::roundtrip(&mut s, &[7u8; 512], &mut buf);
                }
            })
        })
        .collect();
    // ...while others send and leave without waiting, half of them with a reset.
    std::thread::sleep(Duration::from_millis(50));
    for i in 0..30 {
        let mut s = util::connect(addr);
        s.write_all(&[1u8; 700]).unwrap();
        if i % 2 == 0 {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        drop(s);
    }
    for b in busy {
        b.join().expect("busy clients were served in full");
    }
    let stats = util::wait_stats(&server, "everyone gone, slabs back", |s| {
        let m = s.merged();
        m.counters.connections_active == 0 && m.pool.slabs_in_use == 0
    });
    let m = stats.merged();
    assert_eq!(m.counters.connections_closed(), 32);
    assert!(
        m.pool.waits > 0,
        "the leavers waited for a slab: {:?}",
        m.pool
    );
    assert_eq!(m.counters.handler_panics, 0);
    assert_eq!(m.pool.high_water, 2);
}
