//! `shardnet-trickle`: a slowloris client. It holds `--connections` TCP connections to a
//! server and sends one byte on each as soon as it is connected and then every `--every`,
//! reads and discards whatever comes back, and counts the connections the server closes: by
//! EOF or by reset, and how long after the client's last byte. The connects are spread over
//! `--ramp` (default one period), so the bytes, and the server's timeouts, are spread evenly;
//! `--ramp 0` connects all at once, and the server then times them all out together. With
//! `--reconnect` a closed connection is replaced at once, so the server keeps seeing
//! `--connections` trickling peers for the whole run.
//!
//! ```text
//! cargo run --release --bin shardnet-trickle -- --addr 127.0.0.1:7000 --connections 500 \
//!     --every 3s --duration 20s --reconnect --json trickle.json
//! ```
//!
//! One thread, one mio event loop; every wait is bounded by the run's end. Exit status: 0 when
//! the run went as planned (closes by the server are what it measures, not errors), 1 when
//! connections could not be made, 2 for bad arguments.
#![deny(unsafe_code)]
#![warn(missing_debug_implementations, rust_2018_idioms)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

/// Slowloris client: many connections, one byte each every few seconds.
#[derive(Debug, Parser)]
#[command(name = "shardnet-trickle", version)]
struct Args {
    /// Server address, HOST:PORT.
    #[arg(long, short, default_value = "127.0.0.1:9000")]
    addr: String,
    /// Connections to hold.
    #[arg(long, short, default_value_t = 500,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,
    /// Period of each connection's byte: `3s`, `2500ms`.
    #[arg(long, short, default_value = "3s", value_parser = parse_duration)]
    every: Duration,
    /// How long to run.
    #[arg(long, short, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Spread the first connects over this long (default: `--every`); `0` connects all at
    /// once.
    #[arg(long, value_parser = parse_ramp)]
    ramp: Option<Duration>,
    /// Replace a connection the server closed with a new one at once.
    #[arg(long, short)]
    reconnect: bool,
    /// Connect timeout.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    timeout: Duration,
    /// Write the summary as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration like 3, 3s or 500ms"))?;
    let secs = v * scale;
    if !secs.is_finite() || !(0.001..=86_400.0).contains(&secs) {
        return Err(format!("`{text}` is out of range (1 ms to one day)"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_ramp(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    parse_duration(text)
}

/// One trickling connection.
#[derive(Debug)]
struct Peer {
    stream: TcpStream,
    connected: bool,
    started: Instant,
    /// When the last byte was written (the connect, before the first).
    last_sent: Instant,
    /// When the next byte is due (the first as soon as it is connected).
    next_due: Instant,
}

/// Seconds of silence before a close: min, mean, max.
#[derive(Debug, Default, Serialize)]
struct Silence {
    min_s: f64,
    mean_s: f64,
    max_s: f64,
}

/// What a run reports; `--json` writes exactly this.
#[derive(Debug, Default, Serialize)]
struct Summary {
    addr: String,
    connections: u32,
    every_s: f64,
    duration_s: f64,
    /// Connections established (the first ones and the replacements).
    connected: u64,
    /// Connects that failed or timed out.
    connect_failed: u64,
    /// Bytes written.
    bytes_sent: u64,
    /// Bytes the server sent back (discarded).
    bytes_received: u64,
    /// Connections the server closed: EOF plus reset.
    closed_by_server: u64,
    /// ... of which with an orderly close.
    closed_eof: u64,
    /// ... of which with a reset.
    closed_reset: u64,
    /// Time from the client's last byte to the server's close.
    silence_before_close: Silence,
    /// Connections still open at the end.
    still_open: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let addr = match resolve(&args.addr) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("shardnet-trickle: error: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, addr) {
        Ok(s) => {
            print_summary(&s);
            if let Some(path) = &args.json {
                let text = serde_json::to_string_pretty(&s).unwrap_or_default();
                if let Err(e) = std::fs::write(path, text + "\n") {
                    eprintln!("shardnet-trickle: cannot write {}: {e}", path.display());
                    return ExitCode::from(1);
                }
            }
            if s.connect_failed > 0 {
                eprintln!(
                    "shardnet-trickle: {} connects failed; exit status 1",
                    s.connect_failed
                );
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardnet-trickle: error: {e}");
            ExitCode::from(1)
        }
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = addr
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve --addr {addr}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("--addr {addr} resolves to no address"))
}

fn connect(poll: &Poll, addr: SocketAddr, token: Token, now: Instant) -> io::Result<Peer> {
    let mut stream = TcpStream::connect(addr)?;
    poll.registry()
        .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
    Ok(Peer {
        stream,
        connected: false,
        started: now,
        last_sent: now,
        next_due: now,
    })
}

/// Reads and discards; `Some(reset)` once the peer has closed.
fn drain(stream: &mut TcpStream, buf: &mut [u8], received: &mut u64) -> Option<bool> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Some(false),
            Ok(n) => *received += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(true),
        }
    }
}

fn run(args: &Args, addr: SocketAddr) -> io::Result<Summary> {
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let n = args.connections as usize;
    let start = Instant::now();
    let end = start + args.duration;
    let mut s = Summary {
        addr: args.addr.clone(),
        connections: args.connections,
        every_s: args.every.as_secs_f64(),
        duration_s: args.duration.as_secs_f64(),
        ..Summary::default()
    };
    let mut silences = (f64::INFINITY, 0.0_f64, 0.0_f64); // min, sum, max
    let ramp = args.ramp.unwrap_or(args.every);
    let connect_at = |i: usize| start + ramp.mul_f64(i as f64 / n as f64);
    let mut peers: Vec<Option<Peer>> = (0..n).map(|_| None).collect();
    let mut started = 0; // connections 0..started have been started
    let mut buf = [0_u8; 4096];
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        while started < n && connect_at(started) <= now {
            match connect(&poll, addr, Token(started), now) {
                Ok(p) => peers[started] = Some(p),
                Err(e) => {
                    if s.connect_failed == 0 {
                        eprintln!("shardnet-trickle: connect to {addr}: {e}");
                    }
                    s.connect_failed += 1;
                }
            }
            started += 1;
        }
        // Bytes due, and connects that took too long.
        let mut next = if started < n {
            connect_at(started).min(end)
        } else {
            end
        };
        for (i, slot) in peers.iter_mut().enumerate() {
            let Some(p) = slot else { continue };
            if !p.connected {
                if now.duration_since(p.started) > args.timeout {
                    s.connect_failed += 1;
                    *slot = None;
                    if args.reconnect {
                        *slot = connect(&poll, addr, Token(i), now).ok();
                    }
                }
                continue;
            }
            if now >= p.next_due {
                match p.stream.write(b"x") {
                    Ok(1) => {
                        s.bytes_sent += 1;
                        p.last_sent = now;
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // A write error means the server closed: the read side will report it.
                    Err(_) => {}
                }
                p.next_due = now + args.every;
            }
            next = next.min(p.next_due);
        }
        let wait = next
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(100));
        match poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let now = Instant::now();
        for ev in events.iter() {
            let i = ev.token().0;
            let Some(slot) = peers.get_mut(i) else {
                continue;
            };
            let Some(p) = slot else { continue };
            if !p.connected {
                match p.stream.take_error() {
                    Ok(None) if p.stream.peer_addr().is_ok() => {
                        p.connected = true;
                        p.last_sent = now;
                        p.next_due = now; // the first byte at once
                        s.connected += 1;
                    }
                    Ok(None) => continue, // not yet
                    Ok(Some(e)) | Err(e) => {
                        if s.connect_failed == 0 {
                            eprintln!("shardnet-trickle: connect to {addr}: {e}");
                        }
                        s.connect_failed += 1;
                        *slot = None;
                        continue;
                    }
                }
            }
            if let Some(reset) = drain(&mut p.stream, &mut buf, &mut s.bytes_received) {
                let quiet = now.duration_since(p.last_sent).as_secs_f64();
                silences = (
                    silences.0.min(quiet),
                    silences.1 + quiet,
                    silences.2.max(quiet),
                );
                s.closed_by_server += 1;
                if reset {
                    s.closed_reset += 1;
                } else {
                    s.closed_eof += 1;
                }
                let _ = poll.registry().deregister(&mut p.stream);
                *slot = None;
                if args.reconnect && now < end {
                    match connect(&poll, addr, Token(i), now) {
                        Ok(p) => *slot = Some(p),
                        Err(_) => s.connect_failed += 1,
                    }
                }
            }
        }
    }
    s.still_open = peers.iter().flatten().filter(|p| p.connected).count() as u64;
    if s.closed_by_server > 0 {
        s.silence_before_close = Silence {
            min_s: silences.0,
            mean_s: silences.1 / s.closed_by_server as f64,
            max_s: silences.2,
        };
    }
    Ok(s)
}

fn print_summary(s: &Summary) {
    println!("shardnet-trickle: {}", s.addr);
    println!(
        "  load          {} connections, one byte each every {:.3} s, for {:.1} s",
        s.connections, s.every_s, s.duration_s
    );
    println!(
        "  connected     {} (connect failures {})",
        s.connected, s.connect_failed
    );
    println!(
        "  bytes         {} sent, {} received",
        s.bytes_sent, s.bytes_received
    );
    let q = &s.silence_before_close;
    println!(
        "  closed        {} by the server ({} eof, {} reset), {:.3} s min / {:.3} s mean / \
         {:.3} s max after the client's last byte",
        s.closed_by_server, s.closed_eof, s.closed_reset, q.min_s, q.mean_s, q.max_s
    );
    println!("  still open    {}", s.still_open);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_arguments() {
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2500ms"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        for bad in ["", "0", "x", "-1s", "2h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        use clap::CommandFactory;
        Args::command().debug_assert();
        let a = Args::try_parse_from(["t", "-c", "5", "--every", "1s", "--reconnect"]).unwrap();
        assert_eq!((a.connections, a.reconnect, a.ramp), (5, true, None));
        let a = Args::try_parse_from(["t", "--ramp", "0"]).unwrap();
        assert_eq!(a.ramp, Some(Duration::ZERO));
    }
}
