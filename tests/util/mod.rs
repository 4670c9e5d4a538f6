//! Shared helpers for the integration tests: small server configs on port 0, blocking clients
//! with timeouts, and waiting on the server's stats with a deadline.
#![allow(dead_code)] // each test binary uses a different subset

use shardnet::{ConnError, Cores, PoolConfig, Server, ServerConfig, ShardContext, StatsSnapshot};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Upper bound for anything a test waits on; far above what a noisy 2-core machine needs.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Shards the tests run: two (the CI machine has two cores), or one on a one-core machine.
pub fn shards() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2)
}

/// A configuration for tests: loopback port 0, [`shards`] shards, a small pool.
pub fn config() -> ServerConfig {
    ServerConfig {
        cores: Cores::Count(shards()),
        pool: PoolConfig {
            slab_size: 16 * 1024,
            slabs: 256,
            ..PoolConfig::default()
        },
        max_connections: 1024,
        drain_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

/// The echo handler of the example: every chunk goes back out without a copy.
pub async fn echo(
    mut conn: shardnet::Connection,
    _shard: ShardContext<()>,
) -> Result<(), ConnError> {
    while let Some(chunk) = conn.recv().await? {
        conn.send_chunk(chunk).await?;
    }
    Ok(())
}

/// Starts an echo server with `config`.
pub fn start_echo(config: ServerConfig) -> Server {
    Server::start(config, echo).expect("echo server starts")
}

/// A blocking client with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect to the test server");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Sends `msg` and reads exactly as many bytes back.
pub fn roundtrip(s: &mut TcpStream, msg: &[u8], buf: &mut Vec<u8>) {
    s.write_all(msg).expect("write");
    buf.resize(msg.len(), 0);
    s.read_exact(buf).expect("read echo");
}

/// Polls the server's stats until `done` holds, or panics after [`PATIENCE`].
pub fn wait_stats(
    server: &Server,
    what: &str,
    done: impl Fn(&StatsSnapshot) -> bool,
) -> StatsSnapshot {
    let start = Instant::now();
    loop {
        let s = server.stats(Duration::from_secs(10)).expect("stats");
        if done(&s) {
            return s;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for: {what}\n{s}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until EOF or error; returns the bytes read and whether it ended with EOF (vs error).
pub fn read_to_end_or_error(s: &mut TcpStream) -> (Vec<u8>, Result<(), std::io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
}

/// An example server (`target/<profile>/examples/NAME`) run as a child process on port 0.
/// Dropping it kills the child.
pub struct ExampleServer {
    /// The child process.
    pub child: std::process::Child,
    /// Where it listens (parsed from its "listening on" line).
    pub addr: SocketAddr,
    stderr_lines: std::sync::mpsc::Receiver<String>,
}

/// Path of a built example next to the test binary (cargo builds examples for `cargo test`).
pub fn example_path(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    dir.join("examples").join(name)
}

impl ExampleServer {
    /// Starts example `name` with `args` (plus `--addr 127.0.0.1:0`) and waits until it listens.
    pub fn start(name: &str, args: &[&str]) -> ExampleServer {
        ExampleServer::start_wrapped(&[], name, args)
    }

    /// Like [`ExampleServer::start`], run through `wrapper` (e.g. `["prlimit", "--nofile=256"]`).
    pub fn start_wrapped(wrapper: &[&str], name: &str, args: &[&str]) -> ExampleServer {
        use std::io::BufRead;
        let path = example_path(name);
        assert!(
            path.exists(),
            "example {name} not built at {}",
            path.display()
        );
        let mut cmd = match wrapper.split_first() {
            Some((prog, rest)) => {
                let mut c = std::process::Command::new(prog);
                c.args(rest).arg("--").arg(&path);
                c
            }
            None => std::process::Command::new(&path),
        };
        let mut child = cmd
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn example");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("example {name} did not report its address");
                }
            };
            if let Some(rest) = line.split("listening on ").nth(1) {
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                return ExampleServer {
                    child,
                    addr,
                    stderr_lines: rx,
                };
            }
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory of the server, in bytes (VmRSS).
    pub fn rss(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:") * 1024
    }

    /// CPU time (user + system) the server used so far, in clock ticks (1/100 s).
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).expect("stat");
        // Fields after the command name (which is in parentheses and may hold spaces).
        let rest = &stat[stat.rfind(')').expect("comm") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }

    /// Asks for the stats table (SIGUSR1) and returns the per-shard rows and the `closed:`
    /// line, parsed from stderr.
    pub fn live_stats(&self) -> ExampleStats {
        self.signal(10);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut lines = Vec::new();
        let mut in_table = false;
        while Instant::now() < deadline {
            let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if line.contains("stats on SIGUSR1") {
                in_table = true;
                lines.clear();
                continue;
            }
            if in_table {
                let done = line.starts_with("pool wait:");
                lines.push(line);
                if done {
                    return ExampleStats::parse(&lines.join("\n"));
                }
            }
        }
        panic!("no stats on SIGUSR1 within 20 s");
    }

    /// Sends `signal` (a number) to the child, with the `kill` command.
    pub fn signal(&self, signal: i32) {
        let rc = std::process::Command::new("kill")
            .args([format!("-{signal}"), self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(rc.success());
    }

    /// Sends SIGTERM and waits (bounded) for the exit; returns the status, stdout and stderr.
    pub fn stop(mut self) -> (std::process::ExitStatus, String, String) {
        self.signal(15);
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("example did not exit within 30 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            let _ = o.read_to_string(&mut out);
        }
        // The reader thread ends at EOF, now that the child has exited.
        let mut err = Vec::new();
        while let Ok(line) = self.stderr_lines.recv_timeout(Duration::from_secs(5)) {
            err.push(line);
        }
        (status, out, err.join("\n"))
    }
}

/// `KEY value kB` from /proc/PID/status, in KiB.
pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} missing from /proc/{pid}/status"))
}

/// The stats table an example prints (`StatsSnapshot`'s `Display`), summed over shards.
#[derive(Debug, Default, Clone)]
pub struct ExampleStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections open.
    pub active: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Slabs in use.
    pub pool_in_use: u64,
    /// Connections rejected at the limit.
    pub rejected: u64,
    /// `key=value` pairs of the `closed:` line (peer, reset, timeout, ..., backoffs).
    pub closed: std::collections::HashMap<String, u64>,
}

impl ExampleStats {
    /// Parses the table from `text` (the header line starts with "shard").
    pub fn parse(text: &str) -> ExampleStats {
        let mut s = ExampleStats::default();
        let mut rows = false;
        for line in text.lines() {
            if line.trim_start().starts_with("shard") {
                rows = true;
                continue;
            }
            if line.starts_with("closed:") {
                rows = false;
                for kv in line.split([' ', ';', ',']) {
                    if let Some((k, v)) = kv.split_once('=') {
                        if let Ok(v) = v.parse() {
                            s.closed.insert(k.to_string(), v);
                        }
                    }
                }
                continue;
            }
            if rows {
                let f: Vec<&str> = line.split_whitespace().collect();
                if f.len() >= 11 {
                    s.accepted += f[2].parse::<u64>().unwrap_or(0);
                    s.active += f[3].parse::<u64>().unwrap_or(0);
                    s.bytes_in += f[4].parse::<u64>().unwrap_or(0);
                    s.bytes_out += f[5].parse::<u64>().unwrap_or(0);
                    s.pool_in_use += f[6].parse::<u64>().unwrap_or(0);
                    s.rejected += f[10].parse::<u64>().unwrap_or(0);
                }
            }
        }
        s
    }
}

impl Drop for ExampleServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---- streaming integrity client (mio, one thread, many connections) ----

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Token};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::io::ErrorKind;

/// Byte `offset..offset+buf.len()` of the pseudo-random stream `seed` (position-addressable,
/// so the sender and the checker can cut the stream differently).
pub fn stream_bytes(seed: u64, offset: usize, buf: &mut [u8]) {
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
    sock: MioStream,
    seed: u64,
    /// Picks write sizes.
    size_rng: SmallRng,
    sent: usize,
    verified: usize,
    pending: Vec<u8>,
    pending_off: usize,
}

/// Streams `per_conn` bytes over each of `conns` connections; returns total bytes verified.
pub fn stream_through(addr: SocketAddr, conns: usize, per_conn: usize, seed: u64) -> usize {
    let mut poll = Poll::new().unwrap();
    let mut streams: Vec<Stream> = (0..conns)
        .map(|i| {
            let std = std::net::TcpStream::connect(addr).expect("connect");
            std.set_nonblocking(true).unwrap();
            std.set_nodelay(true).unwrap();
            let mut sock = MioStream::from_std(std);
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
            start.elapsed() < PATIENCE,
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
