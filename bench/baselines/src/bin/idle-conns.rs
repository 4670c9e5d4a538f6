//! `idle-conns`: opens N connections to an echo server and holds them idle, for the
//! memory-per-idle-connection and idle-CPU scenarios of `scripts/compare.sh`.
//!
//! ```text
//! taskset -c 1 bench/baselines/target/release/idle-conns --addr 127.0.0.1:7000 --count 10000
//! ```
//!
//! Connections are opened one at a time (so no listen backlog overflows), and each sends one
//! byte and waits for its echo, so when `idle-conns: ready N` is printed on stdout every
//! connection has been accepted and served once by the server, like a keep-alive connection
//! that went quiet. `--no-ping` skips the byte (connections that never spoke). Then nothing
//! is sent until SIGINT/SIGTERM or `--hold` seconds, and it exits 0. Exit 1 if any connection
//! fails; 2 for bad arguments.

use shardnet_baselines::common;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: idle-conns --addr HOST:PORT --count N [--hold SECS] [--no-ping]

  --addr     echo server to connect to (required)
  --count    connections to open and hold (required)
  --hold     seconds to hold them at most (default 300); SIGINT/SIGTERM end it sooner
  --no-ping  do not send one byte per connection (default: send it and await the echo)

Prints `idle-conns: ready N` on stdout once all N are open, exits 0 when the hold ends.";

struct Args {
    addr: SocketAddr,
    count: usize,
    hold: Duration,
    ping: bool,
}

fn parse_args() -> Result<Args, String> {
    let (mut addr, mut count, mut hold, mut ping) = (None, None, Duration::from_secs(300), true);
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "--no-ping" => ping = false,
            "--addr" | "--count" | "--hold" => {
                let v = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let bad = |e: &dyn std::fmt::Display| format!("bad {flag} {v}: {e}");
                match flag.as_str() {
                    "--addr" => addr = Some(v.parse().map_err(|e| bad(&e))?),
                    "--count" => count = Some(v.parse().map_err(|e| bad(&e))?),
                    _ => hold = Duration::from_secs(v.parse().map_err(|e| bad(&e))?),
                }
            }
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    Ok(Args {
        addr: addr.ok_or("--addr is required")?,
        count: count.ok_or("--count is required")?,
        hold,
        ping,
    })
}

fn open(addr: SocketAddr, ping: bool) -> std::io::Result<TcpStream> {
    let timeout = Duration::from_secs(5);
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    if ping {
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(timeout))?;
        s.write_all(b"x")?;
        let mut b = [0u8; 1];
        s.read_exact(&mut b)?;
    }
    Ok(s)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("idle-conns: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = common::raise_nofile_limit() {
        eprintln!("idle-conns: could not raise RLIMIT_NOFILE: {e}");
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, Arc::clone(&stop)) {
            eprintln!("idle-conns: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    }
    let start = Instant::now();
    let mut conns = Vec::with_capacity(args.count);
    for i in 0..args.count {
        if stop.load(Ordering::Relaxed) {
            eprintln!("idle-conns: signalled after {i} connections");
            return ExitCode::FAILURE;
        }
        match open(args.addr, args.ping) {
            Ok(s) => conns.push(s),
            Err(e) => {
                eprintln!(
                    "idle-conns: connection {} of {} failed: {e}",
                    i + 1,
                    args.count
                );
                return ExitCode::FAILURE;
            }
        }
    }
    println!("idle-conns: ready {}", conns.len());
    let _ = std::io::stdout().flush();
    eprintln!(
        "idle-conns: {} connections open in {:.2} s, holding",
        conns.len(),
        start.elapsed().as_secs_f64()
    );
    let held = Instant::now();
    while !stop.load(Ordering::Relaxed) && held.elapsed() < args.hold {
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(conns);
    ExitCode::SUCCESS
}
