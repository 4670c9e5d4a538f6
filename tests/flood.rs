//! Connection floods against the echo example (its own process, so each side has its own
//! 20,000-descriptor limit): tens of thousands of idle connections cost a bounded few KiB
//! each, and running out of descriptors makes accept back off instead of spinning.
//!
//! One binary holds these tests, and they run one at a time (they share this process's
//! descriptor limit).

mod util;

use std::net::TcpStream;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Bytes of resident memory an idle connection may cost the server (documented in the README).
const IDLE_CONNECTION_BOUND: u64 = 2048;

fn open(addr: std::net::SocketAddr, n: usize) -> Vec<TcpStream> {
    let start = Instant::now();
    (0..n)
        .map(|i| {
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "connecting {n} took too long ({i} done)"
            );
            TcpStream::connect(addr).unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect()
}

#[test]
fn many_idle_connections_cost_a_bounded_few_kib_each() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let (_, limit) = shardnet::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    let n = (limit.saturating_sub(1000) as usize).min(19_000);
    assert!(
        n >= 1000,
        "descriptor limit {limit} is too low for a flood test"
    );
    let server = util::ExampleServer::start(
        "echo",
        &[
            "--slabs",
            "256",
            "--recv-timeout",
            "0",
            "--max-connections",
            "20000",
        ],
    );
    let addr = server.addr;
    // Warm up one connection so lazily created state is in the baseline.
    let mut warm = util::connect(addr);
    let mut buf = Vec::new();
    util::roundtrip(&mut warm, b"warm", &mut buf);
    std::thread::sleep(Duration::from_millis(200));
    let before = server.rss();
    let conns = open(addr, n);
    let deadline = Instant::now() + util::PATIENCE;
    let stats = loop {
        let s = server.live_stats();
        if s.active as usize == n + 1 {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "server holds {} of {} connections",
            s.active,
            n + 1
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let after = server.rss();
    let per_conn = after.saturating_sub(before) / n as u64;
    eprintln!(
        "flood: held {} connections; server RSS {} -> {} bytes: {per_conn} bytes per idle connection",
        stats.active,
        before,
        after
    );
    assert!(
        per_conn <= IDLE_CONNECTION_BOUND,
        "{per_conn} bytes per idle connection (bound {IDLE_CONNECTION_BOUND})"
    );
    assert_eq!(stats.pool_in_use, 0, "idle connections hold no slab");
    // They are all being served: spot-check a spread of them.
    for s in conns.iter().step_by(n / 50) {
        let mut s = s.try_clone().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        util::roundtrip(&mut s, b"are you there", &mut buf);
    }
    drop(conns);
    let deadline = Instant::now() + util::PATIENCE;
    while server.live_stats().active != 1 {
        assert!(Instant::now() < deadline, "connections were not all closed");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, _, _) = server.stop();
    assert!(status.success());
}

#[test]
fn out_of_descriptors_accept_backs_off_instead_of_spinning() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    shardnet::raise_nofile_limit().expect("raise RLIMIT_NOFILE");
    // The server may open 200 descriptors in all; the clients try 600 connections.
    let server = util::ExampleServer::start_wrapped(
        &["prlimit", "--nofile=200:200"],
        "echo",
        &["--slabs", "64", "--recv-timeout", "0"],
    );
    let addr = server.addr;
    let conns = open(addr, 600);
    std::thread::sleep(Duration::from_millis(500)); // the server hits EMFILE and backs off
    let ticks_before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(2));
    let busy = server.cpu_ticks() - ticks_before;
    let stats = server.live_stats();
    eprintln!(
        "EMFILE: {} connections held, {} back-offs, {busy} CPU ticks in 2 s",
        stats.active, stats.closed["backoffs"]
    );
    assert!(
        stats.closed["backoffs"] > 0,
        "descriptor exhaustion was counted"
    );
    assert!(stats.active < 600, "the server could not hold all of them");
    assert!(
        busy < 60,
        "accept spun: {busy} ticks of CPU in 2 s (200 = one core busy)"
    );
    // Freeing descriptors lets the server accept the waiting connections.
    let held = stats.active;
    drop(conns);
    let deadline = Instant::now() + util::PATIENCE;
    loop {
        let s = server.live_stats();
        if s.accepted > held && s.active == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the server did not recover: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut s = util::connect(addr);
    let mut buf = Vec::new();
    util::roundtrip(&mut s, b"recovered", &mut buf);
    let (status, _, _) = server.stop();
    assert!(status.success());
}
