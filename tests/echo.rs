//! Data integrity through the echo path: many concurrent connections stream random bytes in
//! random-size writes while reading; every byte must come back, in order.

mod util;

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Byte `offset..offset+buf.len()` of the pseudo-random stream `seed` (position-addressable,
/// so the sender and the checker can cut the stream differently).
fn stream_bytes(seed: u64, offset: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = (offset + i) as u64;
        let mut z = seed ^ (pos / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        *b = (z >> ((pos % 8) * 8)) as u8;
    }
}

struct Stream {
    sock: TcpStream,
    seed: u64,
    /// Picks write sizes.
    size_rng: SmallRng,
    sent: usize,
    verified: usize,
    pending: Vec<u8>,
    pending_off: usize,
}

/// Streams `per_conn` bytes over each of `conns` connections; returns total bytes verified.
fn stream_through(addr: SocketAddr, conns: usize, per_conn: usize, seed: u64) -> usize {
    let mut poll = Poll::new().unwrap();
    let mut streams: Vec<Stream> = (0..conns)
        .map(|i| {
            let std = std::net::TcpStream::connect(addr).expect("connect");
            std.set_nonblocking(true).unwrap();
            std.set_nodelay(true).unwrap();
            let mut sock = TcpStream::from_std(std);
            poll.registry()
                .register(&mut sock, Token(i), Interest::READABLE | Interest::WRITABLE)
                .unwrap();
            let s = seed.wrapping_mul(1_000_003).wrapping_add(i as u64);
            Stream {
                sock,
                seed: s,
                size_rng: SmallRng::seed_from_u64(!s),
                sent: 0,
                verified: 0,
                pending: Vec::new(),
                pending_off: 0,
            }
        })
        .collect();
    let mut events = Events::with_capacity(1024);
    let mut rbuf = vec![0u8; 64 * 1024];
    let mut expect = vec![0u8; 64 * 1024];
    let mut done = 0;
    let start = Instant::now();
    while done < conns {
        assert!(
            start.elapsed() < util::PATIENCE,
            "integrity run did not finish: {done}/{conns} connections verified"
        );
        poll.poll(&mut events, Some(Duration::from_millis(100)))
            .unwrap();
        for ev in events.iter() {
            let s = &mut streams[ev.token().0];
            if s.verified == per_conn {
                continue;
            }
            // Write while the socket takes it.
            while s.sent < per_conn || s.pending_off < s.pending.len() {
                if s.pending_off == s.pending.len() {
                    let n = s.size_rng.gen_range(1..=64 * 1024).min(per_conn - s.sent);
                    s.pending.resize(n, 0);
                    stream_bytes(s.seed, s.sent, &mut s.pending);
                    s.pending_off = 0;
                    s.sent += n;
                }
                match s.sock.write(&s.pending[s.pending_off..]) {
                    Ok(n) => s.pending_off += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("write failed after {} bytes: {e}", s.sent),
                }
            }
            // Read and check everything available.
            loop {
                match s.sock.read(&mut rbuf) {
                    Ok(0) => panic!("server closed after {} verified bytes", s.verified),
                    Ok(n) => {
                        stream_bytes(s.seed, s.verified, &mut expect[..n]);
                        assert!(
                            rbuf[..n] == expect[..n],
                            "mismatch within bytes {}..{} of a connection",
                            s.verified,
                            s.verified + n
                        );
                        s.verified += n;
                        assert!(
                            s.verified <= per_conn,
                            "more bytes came back than were sent"
                        );
                        if s.verified == per_conn {
                            done += 1;
                            break;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("read failed after {} verified bytes: {e}", s.verified),
                }
            }
        }
    }
    streams.iter().map(|s| s.verified).sum()
}

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
