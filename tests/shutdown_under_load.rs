//! Graceful shutdown under load: SIGTERM while 100 connections have requests in flight. Every
//! byte the server received is answered in full before its connection closes, no answer is
//! lost to a reset, and the process exits 0 within the drain deadline.

mod util;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// The byte at position `i` of connection `c`'s request stream.
fn pattern(c: usize, i: usize) -> u8 {
    (i.wrapping_mul(31) ^ c.wrapping_mul(131)) as u8
}

#[test]
fn sigterm_with_requests_in_flight_loses_no_acknowledged_request() {
    const CONNS: usize = 100;
    const REQ: usize = 200;
    let server = util::ExampleServer::start("echo", &["--slabs", "1024", "--drain", "5"]);
    let addr = server.addr;
    let clients: Vec<_> = (0..CONNS)
        .map(|c| {
            std::thread::spawn(move || {
                let mut s = util::connect(addr);
                let mut sent = 0usize;
                let mut received = 0usize;
                let mut req = [0u8; REQ];
                let mut buf = [0u8; 4096];
                // Two requests in flight, replies checked byte by byte, until the server ends
                // the connection.
                'conn: loop {
                    for _ in 0..2 {
                        for (j, b) in req.iter_mut().enumerate() {
                            *b = pattern(c, sent + j);
                        }
                        if s.write_all(&req).is_err() {
                            break 'conn;
                        }
                        sent += REQ;
                    }
                    while received < sent {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break 'conn,
                            Ok(n) => {
                                for (j, &b) in buf[..n].iter().enumerate() {
                                    assert_eq!(
                                        b,
                                        pattern(c, received + j),
                                        "conn {c} byte {}",
                                        received + j
                                    );
                                }
                                received += n;
                            }
                        }
                    }
                }
                // Drain what is still on its way until the server's end of stream.
                loop {
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            for (j, &b) in buf[..n].iter().enumerate() {
                                assert_eq!(b, pattern(c, received + j));
                            }
                            received += n;
                        }
                        Err(e) => {
                            panic!("conn {c}: {e} after {received} bytes: a reset lost replies")
                        }
                    }
                }
                assert!(received <= sent);
                received
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500)); // everyone busy
    let t = Instant::now();
    let (status, stdout, stderr) = server.stop();
    let took = t.elapsed();
    let received: usize = clients
        .into_iter()
        .map(|c| c.join().expect("client checks"))
        .sum();
    assert!(status.success(), "exit status {status:?}\n{stderr}");
    assert!(
        took < Duration::from_secs(5 + 3),
        "exited {took:?} after SIGTERM (drain 5 s)"
    );
    let stats = util::ExampleStats::parse(&stdout);
    eprintln!(
        "shutdown under load: exit after {took:?}; server in {} out {}; clients got {received}; closed {:?}",
        stats.bytes_in, stats.bytes_out, stats.closed
    );
    assert_eq!(stats.accepted, CONNS as u64);
    assert!(stats.bytes_in > 0);
    assert_eq!(
        stats.bytes_out, stats.bytes_in,
        "every received byte was answered"
    );
    assert_eq!(
        received as u64, stats.bytes_out,
        "every answer reached its client"
    );
    assert_eq!(stats.pool_in_use, 0);
    let _ = std::io::stdout().flush();
}
